"""Fit a selector on each fold's training part, transform every patient, cache it in the store.

For each fold the selector is fit on the patients of the fold's training part only (``train``
by default; ``val`` is held out too, so model selection on it sees unseen-by-selection data)
and then transforms every patient of the cohort, test fold included. The result is cached in
the feature store under the fold's *selection key* = hash(selector fingerprint, training
patients, their values): the ``omics`` table gets one row per (patient, output group) with
``source`` = that key and ``fold`` = the fold number, ``omics_features`` the feature names.
The stage ``select`` records one unit per fold, so a rerun is a cache hit and an interrupted
run computes only the missing folds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .data import as_survival_frame, check_matrices, digest_rows
from .selector import OmicsSelector

__all__ = ["FoldSelection", "fold_training_sets", "select_folds", "selection_report"]

log = logging.getLogger("pmx.omics")


@dataclass
class FoldSelection:
    """One fold's selection: feature names and vectors per output group, for every patient."""

    fold: int
    key: str
    train_patients: list[str]
    features: dict[str, list[str]]
    vectors: dict[str, pd.DataFrame]
    report: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    seconds: float = 0.0


def fold_training_sets(folds: Any, parts: Sequence[str] = ("train",)) -> list[tuple[int, list[str]]]:
    """(fold, training patient IDs) pairs from a split table or plain lists.

    Accepts a split table as made by ``pmx.evaluation.splits.make_folds`` (polars or pandas,
    columns fold / patient_id / part), a mapping fold -> IDs, or a sequence of ID lists.
    """
    if hasattr(folds, "columns") and {"fold", "patient_id", "part"} <= set(folds.columns):
        table = folds.to_pandas() if hasattr(folds, "to_pandas") else folds
        chosen = table[table["part"].isin(parts)]
        return [(int(f), sorted(map(str, rows["patient_id"]))) for f, rows in chosen.groupby("fold", sort=True)]
    if isinstance(folds, Mapping):
        return [(int(f), sorted(map(str, ids))) for f, ids in sorted(folds.items())]
    return [(i, sorted(map(str, ids))) for i, ids in enumerate(folds)]


def select_folds(selector: OmicsSelector, omics: Mapping[str, pd.DataFrame], survival: Any,
                 folds: Any, *, store: Any = None, force: bool = False,
                 parts: Sequence[str] = ("train",), progress: bool = True) -> list[FoldSelection]:
    """Selection per fold (fit on its training part, transform everyone), cached in ``store``."""
    matrices = check_matrices(omics)
    frame = as_survival_frame(survival)
    training = fold_training_sets(folds, parts)
    if not training:
        raise DataError("no folds given: pass a split table (pmx.evaluation.splits.make_folds) or ID lists")
    keys = {fold: selector.selection_fingerprint(train, matrices) for fold, train in training}
    results: list[FoldSelection] = []
    if store is None:
        for fold, train in _progress(training, progress, selector.name, len(training)):
            results.append(_compute(selector, matrices, frame, fold, train, keys[fold]))
        return results

    units = [f"{fold}:{keys[fold]}" for fold, _ in training]
    by_fold = dict(training)
    # the transformed vectors of test patients depend on their values too: hash every row
    inputs = [digest_rows(matrices)]
    done: dict[int, FoldSelection] = {}
    with store.stage("select", fingerprint=selector.fingerprint, params={"selector": selector.name,
                     "parts": list(parts)}, inputs=inputs, units=units, force=force, logger=log) as stage:
        todo = len(units) - len(stage.done_units)
        # pending() yields each unit while holding its lock, so several processes share folds
        for unit in _progress(stage.pending(), progress, selector.name, todo):
            fold = int(str(unit).split(":", 1)[0])
            result = _compute(selector, matrices, frame, fold, by_fold[fold], keys[fold])
            stage.done(unit, rows=_write(store, result))
            done[fold] = result
    for fold, train in training:
        results.append(done.get(fold) or _read(store, fold, keys[fold], train))
    return results


def _progress(items: Iterable[Any], enabled: bool, name: str, total: int | None = None) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=f"select {name}", unit="fold", total=total, leave=False)


def _compute(selector: OmicsSelector, omics: dict[str, pd.DataFrame], survival: pd.DataFrame,
             fold: int, train: list[str], key: str) -> FoldSelection:
    started = time.perf_counter()
    known = [p for p in train if p in survival.index]
    if not known:
        raise DataError(f"fold {fold}: none of its {len(train)} training patients has survival data")
    selector.fit(omics, survival.loc[known])
    vectors = selector.transform(omics)
    seconds = round(time.perf_counter() - started, 2)
    log.info("fold %d: %s selected in %.1f s (key %s)", fold, selector.name, seconds, key)
    return FoldSelection(fold, key, known, {k: list(v) for k, v in selector.selected_features_.items()},
                         vectors, {k: dict(v) for k, v in selector.report_.items()}, False, seconds)


def _write(store: Any, result: FoldSelection) -> int:
    from pmx.featurestore.omics import write_omics

    rows = 0
    for group, frame in result.vectors.items():
        rows += write_omics(store, list(frame.index), frame.to_numpy(dtype=np.float32), list(frame.columns),
                            modality=group, source=result.key, fold=result.fold)
    return rows


def _read(store: Any, fold: int, key: str, train: list[str]) -> FoldSelection:
    from pmx.featurestore import sql_literal
    from pmx.featurestore.omics import read_omics

    names = store.read("omics_features", where=f"source = {sql_literal(key)} AND fold = {int(fold)}",
                       columns=["modality", "features"])
    if names.height == 0:
        raise DataError(f"fold {fold}: the store says selection {key} is done but holds no vectors; "
                        "rerun with --force")
    features: dict[str, list[str]] = {}
    vectors: dict[str, pd.DataFrame] = {}
    for group in names["modality"].to_list():
        matrix = read_omics(store, modality=group, source=key, fold=fold)
        features[group] = list(matrix.features)
        vectors[group] = pd.DataFrame(matrix.values.astype(np.float64), index=matrix.patient_ids,
                                      columns=matrix.features)
    log.info("fold %d: cached selection %s read from the store", fold, key)
    return FoldSelection(fold, key, train, features, vectors, {}, True, 0.0)


def selection_report(results: Sequence[FoldSelection]) -> dict[str, Any]:
    """JSON-able per-fold report: what each step kept, and the selected features."""
    folds = []
    for r in results:
        groups = {}
        for group, names in r.features.items():
            real = [n for n in names if not n.startswith("__pad_")]
            groups[group] = {"width": len(names), "selected": len(real), "features": real,
                             **r.report.get(group, {})}
        folds.append({"fold": r.fold, "key": r.key, "n_train": len(r.train_patients), "cached": r.cached,
                      "seconds": r.seconds, "groups": groups})
    stable: dict[str, Any] = {}
    if results:
        for group in results[0].features:
            sets = [set(r.features.get(group, [])) - {n for n in r.features.get(group, []) if n.startswith("__pad_")}
                    for r in results]
            everywhere = set.intersection(*sets) if sets else set()
            stable[group] = {"in_every_fold": len(everywhere)}
    return {"folds": folds, "stability": stable}
