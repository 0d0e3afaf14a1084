"""``pmx ingest``: a validated cohort into the feature store (patients, slides, omics).

The whole cohort is read and validated in memory first; if the report has any error, nothing is
written. Writes are keyed (reruns update rather than duplicate) and run as the store stage
``ingest`` whose fingerprint is a hash of the cohort's content, so ingesting unchanged inputs
again is a logged cache hit, and changed inputs rewrite the cohort's rows (patients, slides and
omics rows that are no longer in the inputs are removed).

A patient belongs to one cohort per store. Slides, omics and embeddings are keyed by patient
and slide id, not by cohort, so two cohorts sharing a patient id would overwrite each other's
data; ingesting a patient that the store holds under another cohort name is refused (naming
both cohorts and the fix) before anything is written. Ingesting different content under the
same cohort name replaces that cohort, and forgets the cache records of its earlier contents,
so asking for the earlier contents again re-ingests them instead of a stale cache hit.
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


def _cohort_names(cohort: Cohort) -> list[str]:
    """Names in the cohort's ``cohort`` column (one per manifest, or the tables' projects)."""
    return sorted({str(c) for c in cohort.patients["cohort"].dropna()}) or [cohort.name]


def _check_patient_owners(store: Any, cohort: Cohort, names: list[str], ids: set[str]) -> None:
    """Refuse (before writing anything) patients the store holds under another cohort."""
    from pmx.featurestore import sql_in

    if not ids or not store.has_table("patients"):
        return
    where = f"{sql_in('patient_id', sorted(ids))} AND cohort IS NOT NULL AND NOT ({sql_in('cohort', names)})"
    taken = store.read("patients", where=where, columns=["patient_id", "cohort"])
    if not taken.height:
        return
    owners = sorted(set(taken["cohort"].to_list()))
    shown = ", ".join(sorted(taken["patient_id"].to_list())[:3])
    more = " ..." if taken.height > 3 else ""
    owned = " and ".join(repr(o) for o in owners)
    raise DataError(
        f"cohort {cohort.name!r}: {taken.height} of its {len(ids)} patient(s) ({shown}{more}) are "
        f"already in the store {store.uri} as patients of cohort {owned}. A patient belongs to "
        "one cohort per store (slides, omics and embeddings are keyed by patient and slide, so "
        f"ingesting would overwrite cohort {owned}'s data); nothing was written. Fix: ingest "
        f"{cohort.name!r} into its own store (--store DIR); for demo cohorts, generate them with "
        f"different seeds (pmx demo-data --seed N); or, if {cohort.name!r} is {owned} under a new "
        f"name, keep the old name (the manifest's `name`) so that it replaces it")


def _forget_replaced(store: Any, stage: Any, names: list[str]) -> None:
    """Drop the cache records of earlier ingests of the same cohort name(s) (this one replaces
    their rows), so ingesting those contents again rewrites them instead of hitting the cache."""
    from pmx.featurestore import sql_in, sql_literal

    summaries = store.read("artifacts", where=f"stage = {sql_literal(STAGE)} AND unit = '*' AND "
                                              f"key != {sql_literal(stage.key)}",
                           columns=["key", "params"])
    stale = []
    for key, params in zip(summaries["key"].to_list(), summaries["params"].to_list()):
        try:
            written = json.loads(params or "{}")
        except ValueError:
            continue
        written = written if isinstance(written, dict) else {}
        earlier = set(written.get("cohorts") or [written.get("cohort")])
        if earlier & set(names):
            stale.append(key)
    if stale:
        log.info("ingest: cohort %s replaces %d earlier ingest(s) of the same name; their cache "
                 "records are dropped", ", ".join(names), len(stale))
        store.delete("artifacts", sql_in("key", stale))


def write_cohort(cohort: Cohort, store: Any, *, force: bool = False) -> IngestResult:
    """Write a validated cohort (raises if its report has errors; nothing is written then)."""
    from pmx.featurestore import sql_in, sql_literal, write_omics

    cohort.report.raise_if_errors(f"cohort {cohort.name}")
    fingerprint = cohort_fingerprint(cohort)
    names = _cohort_names(cohort)
    ids = set(cohort.patients["patient_id"])
    _check_patient_owners(store, cohort, names, ids)
    previous = set(store.read("patients", where=sql_in("cohort", names), columns=["patient_id"])["patient_id"]
                   .to_list()) if store.has_table("patients") else set()
    scope = ids | previous
    _check_feature_spaces(store, cohort, scope)

    modalities = sorted(cohort.omics)
    units = ["patients", "slides", *[f"omics:{m}" for m in modalities]]
    rows: dict[str, int] = {}
    params = {"cohort": cohort.name, "cohorts": names}
    with store.stage(STAGE, fingerprint=fingerprint, params=params, units=units,
                     force=force) as stage:
        if not stage.cached:
            _forget_replaced(store, stage, names)
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
