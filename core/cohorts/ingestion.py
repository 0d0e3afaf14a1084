"""``pmx ingest``: a validated cohort into the feature store (patients, slides, omics).

The whole cohort is read and validated in memory first; if the report has any error, nothing is
written. Writes are keyed (reruns update rather than duplicate) and run as the store stage
``ingest`` whose fingerprint is a hash of the cohort's content, so ingesting unchanged inputs
again is a logged cache hit, and changed inputs rewrite the cohort's rows (patients, slides and
omics rows that are no longer in the inputs are removed).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pmx.errors import DataError

from .loader import load_cohort
from .manifest import Manifest, load_manifest
from .model import Cohort

__all__ = ["ingest", "write_cohort", "cohort_fingerprint", "IngestResult"]

log = logging.getLogger("pmx.cohorts")
STAGE = "ingest"


@dataclass
class IngestResult:
    cohort: Cohort
    key: str  # the ingest stage's content address (use it as the input of later stages)
    fingerprint: str
    cached: bool
    rows: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"cohort": self.cohort.name, "key": self.key, "fingerprint": self.fingerprint,
                "cached": self.cached, "rows": self.rows, "validation": self.cohort.report.as_dict()}


def cohort_fingerprint(cohort: Cohort) -> str:
    """Hash of everything ingest writes: same inputs -> same fingerprint."""
    digest = hashlib.sha256()
    digest.update(cohort.patients.to_csv(index=False).encode())
    slide_cols = ["slide_id", "patient_id", "path", "mpp", "fingerprint"]
    digest.update(cohort.slides[slide_cols].to_csv(index=False).encode() if len(cohort.slides) else b"")
    for modality in sorted(cohort.omics):
        data = cohort.omics[modality]
        digest.update(json.dumps([modality, data.kind, data.patients, data.features]).encode())
        digest.update(np.ascontiguousarray(data.values).tobytes())
    return digest.hexdigest()[:16]


def _patient_rows(cohort: Cohort) -> pa.Table:
    p = cohort.patients
    return pa.table({
        "patient_id": pa.array(p["patient_id"].astype(str).tolist(), pa.string()),
        "time": pa.array(p["time"].astype(float).tolist(), pa.float64()),
        "event": pa.array(p["event"].astype(bool).tolist(), pa.bool_()),
        "site": pa.array([None if s is None or s != s else str(s) for s in p["site"]], pa.string()),
        "cohort": pa.array([None if c is None or c != c else str(c) for c in p["cohort"]], pa.string()),
        "clinical": pa.array(p["clinical"].tolist(), pa.string()),
    })


def _slide_rows(cohort: Cohort) -> pa.Table:
    s = cohort.slides

    def column(name: str, kind: pa.DataType, cast: Any) -> pa.Array:
        return pa.array([None if v is None or v != v else cast(v) for v in s[name]], kind)

    return pa.table({
        "slide_id": column("slide_id", pa.string(), str),
        "patient_id": column("patient_id", pa.string(), str),
        "path": column("path", pa.string(), str),
        "vendor": column("vendor", pa.string(), str),
        "mpp": column("mpp", pa.float64(), float),
        "magnification": column("magnification", pa.float64(), float),
        "width": column("width", pa.int64(), int),
        "height": column("height", pa.int64(), int),
        "fingerprint": column("fingerprint", pa.string(), str),
    })


def _check_feature_spaces(store: Any, cohort: Cohort, ids: set[str]) -> None:
    """Refuse (before writing anything) to replace another cohort's omics feature list."""
    from pmx.featurestore import sql_literal

    for modality, data in cohort.omics.items():
        where = f"modality = {sql_literal(modality)} AND source = 'raw' AND fold = -1"
        stored = store.read_arrow("omics_features", where=where, columns=["features"])
        if not stored.num_rows or stored.column("features")[0].as_py() == data.features:
            continue
        owners = set(store.read("omics", where=where, columns=["patient_id"])["patient_id"].to_list())
        others = owners - ids
        if others:
            raise DataError(
                f"the store already holds raw {modality} values of {len(others)} other patient(s) "
                f"(e.g. {sorted(others)[0]}) with a different feature list; ingesting would replace them. "
                "Use a separate store (--store DIR) for this cohort, or give the modality another name")


def write_cohort(cohort: Cohort, store: Any, *, force: bool = False) -> IngestResult:
    """Write a validated cohort (raises if its report has errors; nothing is written then)."""
    from pmx.featurestore import sql_in, sql_literal, write_omics

    cohort.report.raise_if_errors(f"cohort {cohort.name}")
    fingerprint = cohort_fingerprint(cohort)
    names = sorted({str(c) for c in cohort.patients["cohort"].dropna()}) or [cohort.name]
    ids = set(cohort.patients["patient_id"])
    previous = set(store.read("patients", where=sql_in("cohort", names), columns=["patient_id"])["patient_id"]
                   .to_list()) if store.has_table("patients") else set()
    scope = ids | previous
    _check_feature_spaces(store, cohort, scope)

    modalities = sorted(cohort.omics)
    units = ["patients", "slides", *[f"omics:{m}" for m in modalities]]
    rows: dict[str, int] = {}
    with store.stage(STAGE, fingerprint=fingerprint, params={"cohort": cohort.name}, units=units,
                     force=force) as stage:
        for unit in stage.pending():
            if unit == "patients":
                where = f"({sql_in('cohort', names)}) OR ({sql_in('patient_id', sorted(scope))})"
                n = store.replace("patients", _patient_rows(cohort), where)
            elif unit == "slides":
                where = sql_in("patient_id", sorted(scope))
                n = store.replace("slides", _slide_rows(cohort), where) if len(cohort.slides) else 0
                if not len(cohort.slides) and store.has_table("slides"):
                    store.delete("slides", where)
            else:
                modality = unit.split(":", 1)[1]
                data = cohort.omics[modality]
                stale = sorted(scope - set(data.patients))
                if stale and store.has_table("omics"):
                    store.delete("omics", f"modality = {sql_literal(modality)} AND source = 'raw' AND "
                                          f"fold = -1 AND {sql_in('patient_id', stale)}")
                n = write_omics(store, data.patients, data.values, data.features, modality=modality)
            rows[unit] = n
            stage.done(unit, rows=n)
        cached = stage.cached
    if not cached and store.has_table("omics"):  # modalities that disappeared from the inputs
        gone = sorted(set(store.read("omics", where=f"source = 'raw' AND {sql_in('patient_id', sorted(scope))}",
                                     columns=["modality"])["modality"].unique().to_list()) - set(modalities))
        for modality in gone:
            store.delete("omics", f"modality = {sql_literal(modality)} AND source = 'raw' AND "
                                  f"{sql_in('patient_id', sorted(scope))}")
    return IngestResult(cohort, stage.key, fingerprint, cached, rows)


def ingest(manifest: Manifest | str | Path, store: Any = None, *, force: bool = False) -> IngestResult:
    """Read, validate and write a cohort; ``store`` is a FeatureStore, a path/URI or None (default)."""
    from pmx.featurestore import FeatureStore, open_store

    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    cohort = load_cohort(manifest)
    cohort.report.raise_if_errors(f"cohort {cohort.name}")
    if not isinstance(store, FeatureStore):
        store = open_store(store)
    result = write_cohort(cohort, store, force=force)
    log.info("ingest %s: %d patients, %d slides, omics %s%s", cohort.name, len(cohort.patients),
             len(cohort.slides), ", ".join(f"{m} ({len(d.patients)}x{len(d.features)})" for m, d in cohort.omics.items())
             or "none", " (cache hit)" if result.cached else "")
    return result
