"""Cross-validation folds shared through the store: the same patients, seed and settings give
the same split fingerprint, so every method on a cohort evaluates on identical folds."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

log = logging.getLogger("pmx.run")


def shared_folds(store: Any, cohort: str, patients: Sequence[str], time: np.ndarray, event: np.ndarray, *,
                 folds: int, val_fraction: float, seed: int, lineage: dict[str, Any] | None = None) -> Any:
    """Patient-level folds stratified by event (``pmx.evaluation.make_folds``), read from the
    store when this split exists there already (logged as a cache hit), else saved to it."""
    from pmx.evaluation import make_folds, save_folds
    from pmx.featurestore import sql_literal

    table = make_folds(list(patients), np.asarray(event), n_folds=folds, val_fraction=val_fraction, seed=seed,
                       time=np.asarray(time))
    split = table["split"][0]
    existing = store.read("splits", where=f"split = {sql_literal(split)}", columns=["patient_id"])
    cached = existing.height == table.height
    if not cached:
        save_folds(table, store)
    if lineage is not None:
        lineage.setdefault("stages", {})["folds"] = {"split": split, "folds": folds, "cached": cached,
                                                     "patients": table["patient_id"].n_unique()}
    log.info("stage folds (%s, %d folds, %d patients): %s", split, folds, len(patients),
             "cache hit (same split as earlier runs on this cohort)" if cached else "computed")
    return table
