"""ContraMAE's data stages: cohort -> store (ingest) -> one representative region per patient
(pixels stored in the feature store) + raw omics, read back into memory.

Every stage goes through the shared feature store and its stage cache: a second run (or CMTA on
the same demo cohort) reuses the ingested patients, slides and omics, and a second ContraMAE run
reuses the tiled regions; the log names each cache hit. Regions come back from the store's
``tiles`` rows (JPEG/PNG bytes written by the ``representative-region`` tiler), never re-read
from the slides.

**One region per patient.** The tiler keeps one region per *slide*. A patient with several
slides gets the region of the slide whose stored region is the darkest on average, i.e. the
tiler's own ``dark-tissue`` score (tissue fraction x mean darkness in tissue; white background
counts as 0) computed on the stored pixels; ties go to the smallest slide id. Deterministic, and
the same rule the tiler uses to pick a region within a slide.
"""

from __future__ import annotations

import logging
import time as clock
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

import pmx
from pmx.errors import ConfigError, DataError

log = logging.getLogger("pmx.contramae")

__all__ = ["CohortData", "build_tiler", "decode_regions", "load_cohort_data", "pick_regions", "region_stage"]

#: fewer patients than this cannot give K folds with a validation split and events in each
MIN_PATIENTS = 10


@dataclass
class CohortData:
    """Everything the cross-validation needs, in memory, rows in ``patients`` order."""

    name: str
    patients: list[str]
    time: np.ndarray
    event: np.ndarray
    images: torch.Tensor | None  #: uint8 [N, 3, R, R] on the device it was decoded on; None without pathology
    omics: dict[str, pd.DataFrame]  #: raw omics per type (patients x features, rows = ``patients``); {} without omics
    region_slides: list[str]  #: the slide each patient's region comes from ('' without pathology)
    manifest: Path
    lineage: dict[str, Any] = field(default_factory=dict)


def build_tiler(data: Any) -> Any:
    from pmx.tiling import RepresentativeRegionTiler

    if data.tiler != "representative-region":
        raise ConfigError(f"contramae: data.tiler={data.tiler!r} is not supported; ContraMAE takes one "
                          "region per slide from the 'representative-region' tiler")
    fixed = {"size": data.region_size, "magnification": data.magnification, "stride": data.stride,
             "pixels": data.pixels}
    clash = sorted(set(fixed) & set(data.tiler_options))
    if clash:
        raise ConfigError(f"set {', '.join(clash)} with data.region_size / magnification / stride / pixels, "
                          "not data.tiler_options")
    return RepresentativeRegionTiler(**fixed, **data.tiler_options)


def decode_regions(blobs: Sequence[bytes], size: int, device: torch.device | str = "cpu",
                   names: Sequence[str] | None = None) -> torch.Tensor:
    """Stored JPEG/PNG regions -> uint8 ``[N, 3, size, size]`` on ``device``.

    On CUDA, JPEGs are decoded on the GPU in one batched ``torchvision.io.decode_jpeg`` call
    (nvJPEG); elsewhere, or for PNG, on the CPU. A region of the wrong size is an error naming the
    slide (the tiler's ``size`` and ``data.region_size`` disagree: re-tile).
    """
    device = torch.device(device)
    names = list(names) if names is not None else [str(i) for i in range(len(blobs))]
    images: list[torch.Tensor] | None = None
    if device.type == "cuda" and blobs and all(bytes(b[:2]) == b"\xff\xd8" for b in blobs):
        import warnings

        from torchvision.io import ImageReadMode, decode_jpeg

        with warnings.catch_warnings():  # torchvision 0.29 points to TorchCodec; nvJPEG still works
            warnings.simplefilter("ignore", DeprecationWarning)
            images = decode_jpeg([torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs],
                                 mode=ImageReadMode.RGB, device=device)
    if images is None:
        images = [_decode_cpu(b) for b in blobs]
    out = torch.empty((len(images), 3, size, size), dtype=torch.uint8, device=device)
    for i, (name, image) in enumerate(zip(names, images)):
        if tuple(image.shape) != (3, size, size):
            raise DataError(f"stored region of slide {name} is {tuple(image.shape[1:])} px, not {size} x {size}; "
                            "re-tile with --force or make data.region_size match the stored regions")
        out[i].copy_(image, non_blocking=True)
    return out


def _decode_cpu(blob: bytes) -> torch.Tensor:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(blob)) as image:
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)


def pick_regions(frame: pd.DataFrame, images: torch.Tensor) -> tuple[list[str], list[int]]:
    """One region per patient (see the module docstring): (patients, row of their region in ``images``).

    ``frame`` has ``patient_id`` and ``slide_id`` per row of ``images``.
    """
    means = [chunk.float().mean(dim=(1, 2, 3)) for chunk in images.split(64)]  # no full float copy
    darkness = 1.0 - (torch.cat(means).cpu().numpy() if means else np.zeros(0)) / 255.0
    table = frame.assign(_row=np.arange(len(frame)), _darkness=np.round(darkness, 6))
    table = table.sort_values(["patient_id", "_darkness", "slide_id"], ascending=[True, False, True])
    best = table.drop_duplicates("patient_id", keep="first")
    return best["patient_id"].tolist(), best["_row"].astype(int).tolist()


def region_stage(context: pmx.RunContext, data: Any, store: Any, slide_ids: set[str] | None,
                 lineage: dict[str, Any], *, progress: bool = True,
                 device: torch.device | str = "cpu") -> tuple[dict[str, int], torch.Tensor, pd.DataFrame]:
    """Tile (cached per slide in the store) and read the regions back, decoded on ``device``:
    (patient -> row of their region, uint8 regions of every slide ``[S, 3, R, R]``, the store
    rows, one per slide, in the same order)."""
    from pmx.tiling import load_tiles, tile_store_slides
    from pmx.tiling.sources import slides_from_store

    tiler = build_tiler(data)
    refs = [r for r in slides_from_store(store) if slide_ids is None or r.slide_id in slide_ids]
    if not refs:
        raise DataError(f"store {store.uri} has no slide of this cohort to tile; ingest a cohort with slides "
                        "or run --set modalities=omics")
    tiled = tile_store_slides(tiler, store, slides=refs, workers=data.tiling_workers, force=context.force,
                              progress=progress)
    summary = tiled.as_dict()
    lineage.setdefault("stages", {})["tile"] = summary
    log.info("stage tile (%s %s, %d px at %gx): %d slide(s), %s", tiler.name, tiler.fingerprint, data.region_size,
             data.magnification, tiled.slides,
             "cache hit" if tiled.computed == 0 else f"{tiled.computed} computed, {tiled.skipped} cached")

    started = clock.perf_counter()
    rows = load_tiles(store, tiler, columns=["slide_id", "patient_id", "pixels", "pixel_format"]).to_pandas()
    wanted = {r.slide_id for r in refs}
    rows = rows[rows["slide_id"].isin(wanted) & rows["pixels"].notna()].sort_values("slide_id").reset_index(drop=True)
    images = decode_regions(rows["pixels"].tolist(), data.region_size, device=device,
                            names=rows["slide_id"].tolist())
    patients, picked = pick_regions(rows[["patient_id", "slide_id"]], images)
    several = int((rows.groupby("patient_id").size() > 1).sum()) if len(rows) else 0
    lineage["stages"]["regions"] = {
        "tiler": tiler.fingerprint, "slides": len(rows), "patients": len(patients),
        "patients_with_several_slides": several, "rule": "darkest stored region (dark-tissue score), then slide id",
        "shape": [len(patients), 3, data.region_size, data.region_size], "device": str(images.device),
        "seconds": round(clock.perf_counter() - started, 2),
    }
    log.info("stage regions: %d region(s) read from the store into uint8 [%d, 3, %d, %d] on %s (%.1f MiB)%s",
             len(rows), len(patients), data.region_size, data.region_size, images.device,
             len(patients) * 3 * data.region_size ** 2 / 2 ** 20,
             f"; {several} patient(s) with several slides: darkest region kept" if several else "")
    return dict(zip(patients, picked)), images, rows


def _read_raw_omics(store: Any, types: Sequence[str], cohort_patients: set[str]) -> dict[str, pd.DataFrame]:
    from pmx.featurestore import read_omics

    out: dict[str, pd.DataFrame] = {}
    for modality in types:
        try:
            matrix = read_omics(store, modality=modality)
        except DataError:
            out[modality] = pd.DataFrame()
            continue
        frame = pd.DataFrame(matrix.values, index=matrix.patient_ids, columns=matrix.features)
        frame = frame[~frame.index.duplicated()]
        out[modality] = frame[frame.index.isin(cohort_patients)]
    return out


def load_cohort_data(context: pmx.RunContext, config: Any, *, progress: bool = True,
                     device: torch.device | str = "cpu") -> CohortData:
    """Run (or reuse) ingest and tiling; read survival, regions (decoded on ``device``) and raw
    omics of the usable patients."""
    from pmx.featurestore import open_store, sql_literal
    from pmx.recipes import ingest_stage, resolve_manifest

    data = config.data
    use_omics, use_images = config.modalities != "pathology", config.modalities != "omics"
    manifest = resolve_manifest(context, config.demo, method="contramae")
    store = open_store(context.store)
    lineage: dict[str, Any] = {"store": str(store.uri), "manifest": str(manifest), "stages": {},
                               "modalities": config.modalities, "warnings": []}
    ingested = ingest_stage(context, manifest, store, lineage)
    name = ingested.cohort.name

    patients = store.read("patients", where=f"cohort = {sql_literal(name)}",
                          columns=["patient_id", "time", "event"]).to_pandas()
    no_survival = patients[patients["time"].isna() | patients["event"].isna()]["patient_id"].tolist()
    patients = patients.dropna(subset=["time", "event"]).drop_duplicates("patient_id").sort_values("patient_id")
    cohort_ids = set(patients["patient_id"])

    region_of: dict[str, int] = {}
    images = None
    region_rows = None
    if use_images:
        slides = ingested.cohort.slides
        slide_ids = set(slides["slide_id"]) if slides is not None and "slide_id" in slides else None
        region_of, images, region_rows = region_stage(context, data, store, slide_ids, lineage, progress=progress,
                                                      device=device)
    else:
        lineage["stages"]["tile"] = "skipped (modalities=omics)"

    raw = _read_raw_omics(store, data.omics_types, cohort_ids) if use_omics else {}

    dropped: dict[str, list[str]] = {"no survival": no_survival}
    keep = []
    for patient in patients["patient_id"]:
        missing = [m for m, frame in raw.items() if patient not in frame.index]
        if use_images and patient not in region_of:
            missing.insert(0, "region (no slide, or no tissue found)")
        if missing:
            dropped.setdefault("no " + " / ".join(missing), []).append(patient)
            continue
        keep.append(patient)
    for reason, who in dropped.items():
        if who:
            message = (f"contramae ({config.modalities}): {len(who)} patient(s) dropped, {reason}: "
                       f"e.g. {', '.join(who[:3])}")
            log.warning(message)
            lineage["warnings"].append(message)
    lineage["dropped"] = {reason: len(who) for reason, who in dropped.items() if who}
    needed = max(MIN_PATIENTS, 2 * config.eval.folds)
    if len(keep) < needed:
        what = {"both": "a region and every omics type", "omics": "every omics type",
                "pathology": "a region"}[config.modalities]
        raise DataError(f"cohort {name}: only {len(keep)} patient(s) have survival and {what} "
                        f"({', '.join(data.omics_types) if use_omics else 'slides'}); {config.eval.folds}-fold "
                        f"cross-validation needs at least {needed}. Check the manifest ({manifest}), or use "
                        "fewer folds (--set eval.folds=N) or one modality (--set modalities=omics|pathology)")

    table = patients.set_index("patient_id").loc[keep]
    bank_images = None
    slides_used = [""] * len(keep)
    if images is not None and region_rows is not None:  # one gather: no extra copy of the regions
        bank_images = images.index_select(0, torch.as_tensor([region_of[p] for p in keep], device=images.device))
        slides_used = [str(region_rows["slide_id"].iloc[region_of[p]]) for p in keep]
        del images
    lineage["patients"] = len(keep)
    return CohortData(
        name=name, patients=keep, time=table["time"].to_numpy(np.float64),
        event=table["event"].to_numpy().astype(bool), images=bank_images,
        omics={m: frame.loc[keep] for m, frame in raw.items()}, region_slides=slides_used,
        manifest=manifest, lineage=lineage,
    )
