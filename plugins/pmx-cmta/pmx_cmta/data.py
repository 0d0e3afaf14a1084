"""CMTA's data stages: cohort -> store (ingest) -> grid tiles -> resnet50-trunc bags + raw RNA.

Every stage goes through the shared feature store and its stage cache, so a second method on the
same cohort and store (ContraMAE) reuses the ingested patients, slides and omics, and a second
CMTA run reuses tiles and embeddings; the log names each cache hit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import pmx
from pmx.errors import ConfigError, DataError

log = logging.getLogger("pmx.cmta")


@dataclass
class CohortData:
    """Everything the cross-validation needs, in memory: bags are small once embedded."""

    name: str
    patients: list[str]
    time: np.ndarray
    event: np.ndarray
    bags: list[torch.Tensor]  #: per patient, [tiles, 1024] (all slides of the patient)
    rna: pd.DataFrame  #: patients x genes (rows follow ``patients``), after ``data.rna_transform``
    signatures: Path
    manifest: Path
    lineage: dict[str, Any] = field(default_factory=dict)


def resolve_signatures(data: Any, manifest: Path) -> Path:
    """``data.signatures``, else ``signatures.csv`` next to the manifest (the demo writes one)."""
    path = Path(data.signatures) if data.signatures else manifest.parent / "signatures.csv"
    if not path.is_file():
        raise DataError(f"gene-families selector: signatures table {path} does not exist; pass "
                        "--set data.signatures=PATH (MCAT signatures.csv layout, one column per family)")
    return path


def build_tiler(data: Any) -> Any:
    from pmx.tiling import GridTiler

    if data.tiler != "grid":
        raise ConfigError(f"cmta: data.tiler={data.tiler!r} is not supported; CMTA uses 'grid'")
    return GridTiler(size=data.tile_size, magnification=data.magnification, min_tissue=data.min_tissue)


def build_encoder(data: Any) -> Any:
    """resnet50-trunc with the configured weights; random init only when none is configured."""
    from pmx.encoders import ResNet50Trunc, weights_env_var
    import os

    if data.tile_encoder != "resnet50-trunc":
        raise ConfigError(f"cmta: data.tile_encoder={data.tile_encoder!r} is not supported; CMTA "
                          "bags are resnet50-trunc (1024-d) features")
    options: dict[str, Any] = {"input_size": data.encoder_input_size}
    configured = bool(data.encoder_weights) or bool(os.environ.get(weights_env_var("resnet50-trunc"))) \
        or bool(os.environ.get("PMX_WEIGHTS_DIR")
                and (Path(os.environ["PMX_WEIGHTS_DIR"]) / "resnet50-trunc.safetensors").is_file())
    if data.encoder_weights:
        options["weights"] = data.encoder_weights
    if not configured:
        if not data.allow_random_encoder:
            raise ConfigError("resnet50-trunc has no weights file configured: pass --set "
                              "data.encoder_weights=PATH (or $PMX_WEIGHTS_RESNET50_TRUNC), or "
                              "--set data.allow_random_encoder=true for a smoke run")
        log.warning("resnet50-trunc: no weights file configured, using a random initialisation "
                    "(features carry no ImageNet knowledge; recorded in lineage.json)")
        options["random_init"] = True
    return ResNet50Trunc(**options)


def load_cohort_data(context: pmx.RunContext, data: Any, demo: Any, *, progress: bool = True) -> CohortData:
    """Run (or reuse) ingest, tiling and embedding, and read bags, survival and RNA back."""
    from pmx.embedding import embed
    from pmx.featurestore import open_store, read_omics, sql_literal
    from pmx.recipes import ingest_stage, resolve_manifest
    from pmx.tiling import tile_store_slides

    manifest = resolve_manifest(context, demo, method="cmta")
    signatures = resolve_signatures(data, manifest)
    store = open_store(context.store)
    lineage: dict[str, Any] = {"store": str(store.uri), "manifest": str(manifest), "stages": {},
                               "warnings": []}

    ingested = ingest_stage(context, manifest, store, lineage)
    name = ingested.cohort.name

    tiler = build_tiler(data)
    slide_ids = set(ingested.cohort.slides["slide_id"]) if "slide_id" in ingested.cohort.slides else None
    from pmx.tiling.sources import slides_from_store

    refs = [r for r in slides_from_store(store) if slide_ids is None or r.slide_id in slide_ids]
    tiled = tile_store_slides(tiler, store, slides=refs, workers=data.tiling_workers,
                              force=context.force, progress=progress)
    lineage["stages"]["tile"] = _summary_dict(tiled)
    log.info("stage tile (%s %s, %d slides): %s", tiler.name, tiler.fingerprint, len(refs),
             "cache hit" if getattr(tiled, "computed", 1) == 0 else _summary_line(tiled))
    refs = _slides_with_tiles(store, tiler.fingerprint, refs, lineage)

    encoder = build_encoder(data)
    embedded = embed(store, encoder, {"tiler": tiler.fingerprint, "slides": sorted(r.slide_id for r in refs),
                                      "num_workers": data.embed_workers, "threads": data.embed_threads,
                                      "device": context.resolved_device()},
                     force=context.force, progress=progress)
    lineage["stages"]["embed"] = {"encoder": embedded.encoder, "fingerprint": embedded.fingerprint,
                                  "slides": embedded.slides, "cached": embedded.cached,
                                  "computed": embedded.computed, "tiles": embedded.tiles,
                                  "seconds": round(embedded.seconds, 2)}
    lineage["warnings"].extend(embedded.warnings)
    log.info("stage embed (%s %s, %d slides): %s", embedded.encoder, embedded.fingerprint, embedded.slides,
             "cache hit" if embedded.computed == 0 else
             f"computed {embedded.computed}, {embedded.cached} cached")

    patients = store.read("patients", where=f"cohort = {sql_literal(name)}",
                          columns=["patient_id", "time", "event"]).to_pandas()
    patients = patients.dropna(subset=["time", "event"]).sort_values("patient_id")
    rna_matrix = read_omics(store, modality="rna")
    rna = pd.DataFrame(rna_matrix.values, index=rna_matrix.patient_ids, columns=rna_matrix.features)
    rna = rna[~rna.index.duplicated()]
    rna = _transform_rna(rna, data.rna_transform)

    ids, bags, dropped = [], [], {"no_bag": [], "no_rna": []}
    for patient in patients["patient_id"]:
        if patient not in rna.index:
            dropped["no_rna"].append(patient)
            continue
        vectors = store.read_bag(embedded.fingerprint, patient_id=patient)
        if len(vectors) == 0:
            dropped["no_bag"].append(patient)
            continue
        ids.append(patient)
        bags.append(torch.from_numpy(np.array(vectors, dtype=np.float32)))
    for reason, who in dropped.items():
        if who:
            log.warning("cmta needs both modalities: %d patient(s) dropped (%s), e.g. %s", len(who),
                        reason.replace("_", " "), ", ".join(who[:3]))
    lineage["dropped"] = {k: len(v) for k, v in dropped.items()}
    if len(ids) < 10:
        raise DataError(f"cohort {name}: only {len(ids)} patient(s) have both a slide bag and RNA; "
                        "CMTA's cross-validation needs at least 10")
    table = patients.set_index("patient_id").loc[ids]
    sizes = [len(b) for b in bags]
    lineage["bags"] = {"patients": len(ids), "tiles_min": int(min(sizes)), "tiles_median": float(np.median(sizes)),
                       "tiles_max": int(max(sizes))}
    return CohortData(name=name, patients=ids, time=table["time"].to_numpy(np.float64),
                      event=table["event"].to_numpy().astype(bool), bags=bags, rna=rna.loc[ids],
                      signatures=signatures, manifest=manifest, lineage=lineage)


def _slides_with_tiles(store: Any, tiling: str, refs: list[Any], lineage: dict[str, Any]) -> list[Any]:
    """The slides that got at least one tile (a small or nearly blank slide may get none); the
    others are left out of the embedding with a warning, and a patient left without any tile is
    dropped later like a patient without a slide."""
    from pmx.featurestore import sql_literal

    rows = store.read("tiles", where=f"tiler = {sql_literal(tiling)}", columns=["slide_id"])
    tiled = set(rows["slide_id"].to_list())
    empty = sorted(r.slide_id for r in refs if r.slide_id not in tiled)
    if empty:
        log.warning("%d slide(s) have no tile of tiling %s (too small or no tissue) and are left out, "
                    "e.g. %s", len(empty), tiling, ", ".join(empty[:3]))
        lineage["warnings"].append(f"{len(empty)} slide(s) without tiles left out: {', '.join(empty[:5])}")
    return [r for r in refs if r.slide_id in tiled]


def _transform_rna(rna: pd.DataFrame, how: str) -> pd.DataFrame:
    """A per-value transform (no fitting, so no leakage); counts -> log2(1 + x)."""
    if how == "none":
        return rna
    if (rna.to_numpy() < 0).any():
        raise DataError("rna values are negative, so they are not counts; use --set data.rna_transform=none")
    return np.log2(1.0 + rna)


def _summary_dict(summary: Any) -> dict[str, Any]:
    if hasattr(summary, "as_dict"):
        return summary.as_dict()
    out = {}
    for key in ("slides", "tiled", "cached", "computed", "tiles", "failed", "seconds"):
        if hasattr(summary, key):
            value = getattr(summary, key)
            out[key] = value if isinstance(value, (int, float, str)) else str(value)
    return out


def _summary_line(summary: Any) -> str:
    d = _summary_dict(summary)
    return ", ".join(f"{k} {v}" for k, v in d.items() if not isinstance(v, (dict, list))) or str(summary)
