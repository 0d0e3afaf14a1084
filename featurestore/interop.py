"""Import and export per-slide feature bags in the CLAM / TRIDENT layouts.

* ``.h5``: datasets ``features`` (n, dim) and ``coords`` (n, 2) level-0 (x, y); CLAM also
  sets ``patch_level`` and ``patch_size`` attributes on ``coords``.
* ``.pt``: a (n, dim) tensor saved with ``torch.save``, no coordinates.

The slide id is the file stem. Imports run as a stage (``import``), so re-importing the same
files is a cache hit and an interrupted import resumes with the files not yet stored.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

import numpy as np

from pmx.errors import DataError

from .store import sql_in, sql_literal

if TYPE_CHECKING:
    from .store import FeatureStore

log = logging.getLogger("pmx.store")
TCGA_PATIENT = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", re.IGNORECASE)
SUFFIXES = (".h5", ".pt")


def bag_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders into their .h5 / .pt files (sorted); reject anything else."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in SUFFIXES))
        elif path.suffix in SUFFIXES and path.exists():
            files.append(path)
        elif not path.exists():
            raise DataError(f"{path} does not exist")
        else:
            raise DataError(f"{path}: expected a .h5 or .pt feature file or a folder of them")
    if not files:
        raise DataError(f"no .h5 or .pt feature files in {', '.join(map(str, paths))}")
    stems = [f.stem for f in files]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise DataError(f"several files for slide(s) {', '.join(dupes[:5])}; import them separately")
    return files


def read_bag_file(path: Path) -> tuple[np.ndarray, np.ndarray | None, int, int | None]:
    """(features, coords or None, patch level, patch size) of one CLAM/TRIDENT file."""
    if path.suffix == ".pt":
        import torch

        try:
            tensor = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise DataError(f"{path}: not a readable torch tensor file ({exc})") from None
        if isinstance(tensor, dict) and "features" in tensor:
            tensor = tensor["features"]
        if not hasattr(tensor, "numpy"):
            raise DataError(f"{path}: expected a (n, dim) tensor, got {type(tensor).__name__}")
        features = tensor.detach().cpu().numpy()
        coords, level, size = None, -1, None
    else:
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                if "features" not in h5:
                    raise DataError(f"{path}: no 'features' dataset (found: {', '.join(h5.keys())})")
                features = h5["features"][()]
                coords = h5["coords"][()] if "coords" in h5 else None
                attrs = dict(h5["coords"].attrs) if "coords" in h5 else {}
        except OSError as exc:
            raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
        level = int(attrs.get("patch_level", 0))
        size = int(attrs["patch_size"]) if "patch_size" in attrs else None
    if features.ndim == 3 and features.shape[0] == 1:  # some tools save (1, n, dim)
        features = features[0]
    if coords is not None and coords.ndim == 3 and coords.shape[0] == 1:
        coords = coords[0]
    if features.ndim != 2:
        raise DataError(f"{path}: features must be (n, dim), got shape {features.shape}")
    if coords is not None and coords.shape != (features.shape[0], 2):
        raise DataError(f"{path}: coords shape {coords.shape} does not match {features.shape[0]} "
                        "feature rows (expected (n, 2))")
    if features.dtype not in (np.float16, np.float32):
        features = features.astype(np.float32)
    return features, coords, level, size


def _patient_resolver(store: "FeatureStore", slide_ids: Sequence[str],
                      patients: Mapping[str, str] | Callable[[str], str] | None) -> Callable[[str], str]:
    if callable(patients):
        return patients
    if patients is not None:
        mapping = dict(patients)

        def from_mapping(slide_id: str) -> str:
            if slide_id not in mapping:
                raise DataError(f"slide {slide_id} is not in the slide -> patient mapping")
            return mapping[slide_id]

        return from_mapping
    known = store.read_arrow("slides", where=sql_in("slide_id", slide_ids),
                             columns=["slide_id", "patient_id"])
    stored = dict(zip(known.column("slide_id").to_pylist(), known.column("patient_id").to_pylist()))

    def default(slide_id: str) -> str:
        if slide_id in stored:
            return stored[slide_id]
        match = TCGA_PATIENT.match(slide_id)
        return match.group(1).upper() if match else slide_id

    return default


def import_bags(store: "FeatureStore", paths: Iterable[str | Path], encoder: str, *,
                tiler: str = "imported",
                patients: Mapping[str, str] | Callable[[str], str] | None = None,
                dtype: str | None = None, force: bool = False) -> dict[str, int]:
    """Store every bag file under ``encoder``; returns rows per slide imported this time.

    Patients come from ``patients`` (a mapping or function of the slide id), else the store's
    slides table, else the TCGA barcode prefix, else the slide id itself.
    """
    from tqdm.auto import tqdm

    files = bag_files(paths)
    by_slide = {f.stem: f for f in files}
    patient_of = _patient_resolver(store, list(by_slide), patients)
    signature = {f.stem: [f.stat().st_size, int(f.stat().st_mtime)] for f in files}
    written: dict[str, int] = {}
    with store.stage("import", fingerprint=encoder, params={"tiler": tiler, "files": signature},
                     units=list(by_slide), force=force) as stage:
        for slide_id in tqdm(stage.pending(), total=len(by_slide) - len(stage.done_units), desc="import",
                             unit="slide", disable=None):
            features, coords, level, _ = read_bag_file(by_slide[slide_id])
            rows = store.write_embeddings(encoder, slide_id, features, coords=coords,
                                          patient_id=patient_of(slide_id), tiler=tiler,
                                          level=level, dtype=dtype)
            stage.done(slide_id, rows=rows)
            written[slide_id] = rows
    return written


def import_h5(store: "FeatureStore", paths: Iterable[str | Path], encoder: str, **kwargs) -> dict[str, int]:
    """CLAM/TRIDENT ``.h5`` bags (``.pt`` files in the same folders are imported too)."""
    return import_bags(store, paths, encoder, **kwargs)


import_pt = import_h5


def _export_slides(store: "FeatureStore", encoder: str, slide_ids: Sequence[str] | None) -> list[str]:
    stored = store.read_arrow(f"embeddings__{encoder}", columns=["slide_id"]).column("slide_id")
    available = sorted(set(stored.to_pylist()))
    if slide_ids is None:
        return available
    missing = [s for s in slide_ids if s not in set(available)]
    if missing:
        raise DataError(f"encoder {encoder!r} has no vectors for slide(s) {', '.join(missing[:5])}")
    return list(slide_ids)


def _bag_for_export(store: "FeatureStore", encoder: str, slide_id: str) -> tuple[np.ndarray, np.ndarray, int]:
    vectors, coords, _ = store.read_bag(encoder, slide_id=slide_id, with_coords=True)
    levels = store.read_arrow(f"embeddings__{encoder}", where=f"slide_id = {sql_literal(slide_id)}",
                              columns=["level"], limit=1).column("level").to_pylist()
    if len(coords) and (coords[:, 1] == -1).all():
        # position-keyed bags (from .pt, no coordinates) go back out in their original order
        order = np.argsort(coords[:, 0], kind="stable")
        vectors, coords = vectors[order], coords[order]
    return vectors, coords, int(levels[0]) if levels else 0


def export_bags(store: "FeatureStore", encoder: str, out_dir: str | Path, *,
                slide_ids: Sequence[str] | None = None, fmt: str = "h5") -> list[Path]:
    """Write one ``<slide_id>.h5`` (features + coords) or ``.pt`` (features) per slide."""
    if fmt not in ("h5", "pt"):
        raise DataError(f"export format {fmt!r}: use h5 or pt")
    if encoder not in store.encoders():
        raise DataError(f"store {store.uri} has no embeddings for encoder {encoder!r}; "
                        f"encoders: {', '.join(store.encoders()) or '(none)'}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for slide_id in _export_slides(store, encoder, slide_ids):
        vectors, coords, level = _bag_for_export(store, encoder, slide_id)
        path = out / f"{slide_id}.{fmt}"
        tmp = path.with_name(path.name + ".tmp")
        if fmt == "pt":
            import torch

            torch.save(torch.from_numpy(np.ascontiguousarray(vectors)), tmp)
        else:
            import h5py

            with h5py.File(tmp, "w") as h5:
                h5.create_dataset("features", data=vectors)
                dataset = h5.create_dataset("coords", data=coords.astype(np.int64))
                dataset.attrs["patch_level"] = max(level, 0)
                h5.attrs["encoder"] = encoder
        tmp.replace(path)
        paths.append(path)
    return paths


def export_h5(store: "FeatureStore", encoder: str, out_dir: str | Path, **kwargs) -> list[Path]:
    return export_bags(store, encoder, out_dir, fmt="h5", **kwargs)


def export_pt(store: "FeatureStore", encoder: str, out_dir: str | Path, **kwargs) -> list[Path]:
    return export_bags(store, encoder, out_dir, fmt="pt", **kwargs)
