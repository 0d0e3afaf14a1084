"""Cross-validation folds shared through the store.

Folds are made over *every* patient of the cohort with survival data (read from the store's
``patients`` table), not over the patients one method can use, then restricted to the method's
patients. So a patient sits in the same test fold for every method on the cohort (CMTA, which
needs RNA and a bag, and ContraMAE, which needs three omics and a region, compare fold by fold),
and the second method's run is a logged cache hit."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

log = logging.getLogger("pmx.run")


def _cohort_survival(store: Any, cohort: str) -> dict[str, tuple[float, bool]]:
    from pmx.featurestore import sql_literal

    table = store.read("patients", where=f"cohort = {sql_literal(cohort)}", columns=["patient_id", "time", "event"])
    table = table.drop_nulls()
    return {str(p): (float(t), bool(e)) for p, t, e in table.iter_rows()}


def shared_folds(store: Any, cohort: str, patients: Sequence[str], time: np.ndarray, event: np.ndarray, *,
                 folds: int, val_fraction: float, seed: int, lineage: dict[str, Any] | None = None) -> Any:
    """Patient-level folds stratified by event (``pmx.evaluation.make_folds``) over the cohort's
    patients with survival, read from the store when this split exists there already (logged as
    a cache hit), else saved to it; returned restricted to ``patients`` (this method's usable ones)."""
    import polars as pl

    from pmx.evaluation import make_folds, save_folds
    from pmx.featurestore import sql_literal

    survival = _cohort_survival(store, cohort)
    for p, t, e in zip(patients, np.asarray(time), np.asarray(event)):
        survival.setdefault(str(p), (float(t), bool(e)))
    ids = sorted(survival)
    table = make_folds(ids, np.array([survival[p][1] for p in ids]), n_folds=folds, val_fraction=val_fraction,
                       seed=seed, time=np.array([survival[p][0] for p in ids]))
    split = table["split"][0]
    existing = store.read("splits", where=f"split = {sql_literal(split)}", columns=["patient_id"])
    cached = existing.height == table.height
    if not cached:
        save_folds(table, store)
    wanted = {str(p) for p in patients}
    used = table.filter(pl.col("patient_id").is_in(sorted(wanted)))
    if lineage is not None:
        lineage.setdefault("stages", {})["folds"] = {
            "split": split, "folds": folds, "cached": cached, "cohort_patients": len(ids),
            "patients": used["patient_id"].n_unique()}
    log.info("stage folds (%s, %d folds over %d cohort patients, %d used here): %s", split, folds, len(ids),
             len(wanted), "cache hit (same split as earlier runs on this cohort)" if cached else "computed")
    return used
