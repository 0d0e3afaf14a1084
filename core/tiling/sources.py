"""Which slides to tile: files and folders, a cohort manifest, or the store's slides table."""

from __future__ import annotations

import csv
import glob as globlib
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError, DataError
from ..slides.overrides import lookup_mpp
from ..slides.reader import SLIDE_EXTENSIONS
from .runner import SlideRef


def _patient_of(slide_id: str) -> str | None:
    try:
        from pmx.cohorts.barcodes import is_tcga_barcode, patient_of
    except ImportError:  # pragma: no cover - cohorts is part of pmx
        return None
    return patient_of(slide_id) if is_tcga_barcode(slide_id) else None


def _with_override(ref: SlideRef, overrides: Mapping[str, float] | None) -> SlideRef:
    if not overrides:
        return ref
    mpp = lookup_mpp(dict(overrides), ref.slide_id, ref.path)
    if mpp is None:
        return ref
    return SlideRef(ref.slide_id, ref.path, ref.patient_id, mpp)


def slide_refs(paths: Sequence[str | os.PathLike[str]], cohort: str | os.PathLike[str] | None,
               store: Any, overrides: Mapping[str, float] | None = None) -> list[SlideRef]:
    """The slides a command names: files/folders, else a cohort manifest, else every slide of
    ``store`` (the rule `pmx tile` and `pmx embed` share; giving both paths and a cohort is an
    error)."""
    if paths and cohort is not None:
        raise ConfigError("give slide files/folders or --cohort, not both")
    if paths:
        return slides_from_paths(paths, overrides)
    if cohort is not None:
        return slides_from_cohort(cohort, overrides)
    return slides_from_store(store, overrides)


def slides_from_paths(paths: Iterable[str | os.PathLike[str]],
                      overrides: Mapping[str, float] | None = None) -> list[SlideRef]:
    """Slide files, and folders (their files with a slide extension, sorted); id = file stem."""
    refs: list[SlideRef] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in SLIDE_EXTENSIONS)
            if not files:
                raise DataError(f"folder {path} has no slide files "
                                f"({', '.join(SLIDE_EXTENSIONS)})")
        elif path.exists():
            files = [path]
        else:
            raise DataError(f"slide file {path} does not exist")
        for file in files:
            ref = SlideRef(file.stem, str(file.resolve()), _patient_of(file.stem))
            refs.append(_with_override(ref, overrides))
    return refs


def slides_from_store(store: Any, overrides: Mapping[str, float] | None = None) -> list[SlideRef]:
    """Every slide of the store's ``slides`` table (written by ``pmx ingest``)."""
    if not store.has_table("slides"):
        raise DataError(
            f"store {store.uri} has no slides yet. Run `pmx ingest MANIFEST --store {store.uri}` "
            "first, or pass slide files/folders or --cohort DIR to `pmx tile`.")
    table = store.read_arrow("slides", columns=["slide_id", "patient_id", "path", "mpp"])
    refs = []
    for row in table.to_pylist():
        if not row["path"]:
            raise DataError(f"store {store.uri}: slide {row['slide_id']} has no path")
        ref = SlideRef(row["slide_id"], row["path"], row["patient_id"], row["mpp"])
        refs.append(_with_override(ref, overrides))
    return sorted(refs, key=lambda r: r.slide_id)


def slides_from_cohort(cohort: str | os.PathLike[str],
                       overrides: Mapping[str, float] | None = None) -> list[SlideRef]:
    """The slides a cohort manifest lists (``files`` and ``table`` sources)."""
    from pmx.cohorts.manifest import load_manifest

    manifest = load_manifest(cohort)
    refs: list[SlideRef] = []
    for source in manifest.slides:
        if source.format == "files":
            refs += _files_source(manifest, source)
        elif source.format == "table":
            refs += _table_source(manifest, source)
        else:
            raise DataError(
                f"cohort {cohort}: slide source format {source.format!r} is read by `pmx ingest`; "
                "ingest the cohort and run `pmx tile --store DIR` without --cohort.")
    if not refs:
        raise DataError(f"cohort {cohort} lists no slides")
    return [_with_override(ref, overrides) for ref in refs]


def _files_source(manifest: Any, source: Any) -> list[SlideRef]:
    if source.glob:
        pattern = str(manifest.resolve(source.glob))
        files = sorted(Path(p) for p in globlib.glob(pattern, recursive=True))
    else:
        folder = manifest.resolve(source.path)
        if not folder.is_dir():
            raise DataError(f"slide folder {folder} does not exist")
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in tuple(source.extensions))
    return [SlideRef(p.stem, str(p.resolve()), _patient_of(p.stem), source.mpp) for p in files]


def _table_source(manifest: Any, source: Any) -> list[SlideRef]:
    table = manifest.resolve(source.path)
    if not table.is_file():
        raise DataError(f"slide table {table} does not exist")
    text = table.read_text(encoding="utf-8-sig").splitlines()
    dialect = "excel-tab" if text and "\t" in text[0] else "excel"
    base = manifest.resolve(source.slide_dir) if source.slide_dir else table.parent
    refs = []
    for line, row in enumerate(csv.DictReader(text, dialect=dialect), start=2):
        raw_path = (row.get(source.path_column) or "").strip()
        if not raw_path:
            raise DataError(f"slide table {table}, line {line}: empty {source.path_column!r}")
        path = Path(raw_path).expanduser()
        path = path if path.is_absolute() else base / path
        slide_id = (row.get(source.slide_column) or "").strip() or path.stem
        patient = (row.get(source.patient_column) or "").strip() or _patient_of(slide_id)
        mpp_text = (row.get(source.mpp_column) or "").strip()
        try:
            mpp = float(mpp_text) if mpp_text else source.mpp
        except ValueError:
            raise DataError(f"slide table {table}, line {line}: mpp {mpp_text!r} is not a "
                            "number") from None
        refs.append(SlideRef(slide_id, str(path.resolve()), patient, mpp))
    return refs
