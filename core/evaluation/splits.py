"""Patient-level cross-validation folds with an inner validation split, shared by every method.

One split is a long table with one row per (fold, patient): ``split`` (fingerprint of the
cohort's patients and the split settings), ``seed``, ``fold`` (0-based), ``patient_id`` and
``part`` in {train, val, test}. The same patients, events and settings always give the same
table (patients are sorted by id first, so input order does not matter), and the table is
saved in the feature store's ``splits`` table so every method runs on the same folds.

Outer folds: scikit-learn's ``StratifiedKFold`` on the event indicator, optionally crossed with
the TCGA tissue-source site (``TCGA-XX-...``: the two characters after the first dash);
site/event strata smaller than the number of folds are pooled per event so every stratum can
be spread over the folds. Inner split: a stratified-by-event share ``val_fraction`` of each
training fold becomes ``val`` (early stopping, model selection); the test fold is never used
for either.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..components import fingerprint_of
from ..errors import ConfigError, DataError
from ..survival.checks import check_events, check_times

__all__ = [
    "PARTS",
    "tissue_source_site",
    "make_folds",
    "folds_from_table",
    "fold_members",
    "save_folds",
    "load_folds",
]

PARTS = ("train", "val", "test")
_TCGA = re.compile(r"^TCGA-([A-Z0-9]{2})-[A-Z0-9]{4}", re.IGNORECASE)


def tissue_source_site(barcode: str) -> str:
    """Tissue-source site code of a TCGA barcode: 'TCGA-A2-A0T2(-01A...)' -> 'A2'."""
    match = _TCGA.match(str(barcode).strip())
    if match is None:
        raise DataError(
            f"{barcode!r} is not a TCGA barcode (TCGA-XX-YYYY...), so its tissue-source site is "
            "unknown; turn off site stratification for non-TCGA cohorts"
        )
    return match.group(1).upper()


def _strata(events: np.ndarray, sites: list[str] | None, n_folds: int) -> np.ndarray:
    """Stratum label per patient: event, or event x site with rare sites pooled.

    Labels sort with all censored strata before all event strata, so StratifiedKFold's
    round-robin allocation over sorted labels spreads events evenly over folds.
    """
    base = np.where(events, "1", "0")
    if sites is None:
        return base
    labels = np.array([f"{b}|{s}" for b, s in zip(base, sites)])
    values, counts = np.unique(labels, return_counts=True)
    rare = set(values[counts < n_folds])
    return np.array([f"{b}|~pooled" if lab in rare else lab for b, lab in zip(base, labels)])


def _validation_mask(train_events: np.ndarray, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Stratified-by-event choice of the validation share of one training fold."""
    mask = np.zeros(len(train_events), dtype=bool)
    if val_fraction <= 0:
        return mask
    for value in (False, True):
        members = np.flatnonzero(train_events == value)
        if members.size == 0:
            continue
        take = int(round(val_fraction * members.size))
        if value and members.size >= 2:
            take = max(take, 1)  # validation C-index needs an event
        take = min(take, members.size - 1) if value else min(take, members.size)
        if take > 0:
            mask[rng.choice(members, size=take, replace=False)] = True
    return mask


def make_folds(
    patient_id: Sequence[Any],
    event: Any,
    *,
    n_folds: int = 5,
    val_fraction: float = 0.2,
    seed: int = 0,
    stratify_site: bool = False,
    time: Any | None = None,
) -> Any:
    """K patient-level folds stratified by event (and site), each with an inner val split.

    Returns a polars DataFrame (split, seed, fold, patient_id, part) with ``n_folds`` rows per
    patient. ``time`` is optional and only validated (positive, finite) so bad survival data
    fails here, before any training.
    """
    import polars as pl
    from sklearn.model_selection import StratifiedKFold

    if n_folds < 2:
        raise ConfigError(f"n_folds must be >= 2 for cross-validation, got {n_folds}")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ids = [str(p) for p in patient_id]
    events = check_events(event, ids)
    if len(events) != len(ids):
        raise DataError(f"mismatched lengths: {len(ids)} patient ids but {len(events)} events")
    if time is not None:
        times = check_times(time, ids)
        if len(times) != len(ids):
            raise DataError(f"mismatched lengths: {len(ids)} patient ids but {len(times)} times")
    seen: dict[str, int] = {}
    for index, pid in enumerate(ids):
        if pid in seen:
            raise DataError(
                f"patient {pid} appears twice (rows {seen[pid]} and {index}); folds are per "
                "patient: give one row per patient (aggregate slides/samples first)"
            )
        seen[pid] = index
    n_events = int(events.sum())
    if n_events < n_folds:
        raise DataError(
            f"only {n_events} event(s) among {len(ids)} patients but {n_folds} folds: every test "
            f"fold needs at least one event for a C-index. Use at most {max(n_events, 2)} folds "
            "or a cohort with more events"
        )

    order = np.argsort(np.array(ids), kind="stable")
    ids_sorted = [ids[i] for i in order]
    events_sorted = events[order]
    sites = [tissue_source_site(p) for p in ids_sorted] if stratify_site else None
    strata = _strata(events_sorted, sites, n_folds)

    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    split_id = fingerprint_of(
        {
            "patients": fingerprint_of({"ids": ids_sorted, "events": events_sorted.astype(int).tolist()}),
            "n_folds": n_folds,
            "val_fraction": val_fraction,
            "seed": seed,
            "stratify_site": stratify_site,
            "scheme": "pmx-stratified-kfold-v1",
        }
    )
    rows_fold: list[int] = []
    rows_pid: list[str] = []
    rows_part: list[str] = []
    placeholder = np.zeros(len(ids_sorted))
    for fold, (train_idx, test_idx) in enumerate(splitter.split(placeholder, strata)):
        if not events_sorted[test_idx].any():
            raise DataError(
                f"fold {fold} of {n_folds} has no event in its test part (all censored); use fewer "
                "folds or turn off site stratification"
            )
        rng = np.random.default_rng([seed, fold])
        val = _validation_mask(events_sorted[train_idx], val_fraction, rng)
        part = np.empty(len(ids_sorted), dtype=object)
        part[test_idx] = "test"
        part[train_idx[val]] = "val"
        part[train_idx[~val]] = "train"
        rows_fold.extend([fold] * len(ids_sorted))
        rows_pid.extend(ids_sorted)
        rows_part.extend(part.tolist())
    return pl.DataFrame(
        {
            "split": [split_id] * len(rows_pid),
            "seed": pl.Series([seed] * len(rows_pid), dtype=pl.Int64),
            "fold": pl.Series(rows_fold, dtype=pl.Int32),
            "patient_id": rows_pid,
            "part": rows_part,
        }
    )


def folds_from_table(
    patients: Any,
    *,
    id_column: str = "patient_id",
    event_column: str = "event",
    time_column: str | None = "time",
    **options: Any,
) -> Any:
    """``make_folds`` on a patients table (polars or pandas DataFrame)."""
    import polars as pl

    table = patients if isinstance(patients, pl.DataFrame) else pl.from_pandas(patients)
    missing = [c for c in (id_column, event_column) if c not in table.columns]
    if missing:
        raise DataError(
            f"patients table has no column(s) {', '.join(missing)}; columns: {', '.join(table.columns)}"
        )
    time = table[time_column].to_numpy() if time_column and time_column in table.columns else None
    return make_folds(
        table[id_column].to_list(), table[event_column].to_numpy(), time=time, **options
    )


def fold_members(folds: Any, fold: int) -> dict[str, list[str]]:
    """{'train': [...], 'val': [...], 'test': [...]} patient ids of one fold."""
    import polars as pl

    rows = folds.filter(pl.col("fold") == fold)
    if rows.height == 0:
        raise DataError(f"no fold {fold} in this split; folds: {sorted(folds['fold'].unique().to_list())}")
    return {part: rows.filter(pl.col("part") == part)["patient_id"].to_list() for part in PARTS}


def save_folds(folds: Any, target: Any) -> str:
    """Save a split to the feature store (a ``FeatureStore``) or a ``.parquet`` path.

    In the store the split's rows are replaced as a whole (keyed by its fingerprint), so
    saving again never duplicates. Returns the split fingerprint.
    """
    split_ids = folds["split"].unique().to_list()
    if len(split_ids) != 1:
        raise DataError(f"a folds table must hold exactly one split; got {len(split_ids)}")
    split_id = split_ids[0]
    if hasattr(target, "replace") and hasattr(target, "read"):
        from pmx.featurestore import sql_literal

        target.replace("splits", folds, where=f"split = {sql_literal(split_id)}")
        return split_id
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    folds.write_parquet(path)
    return split_id


def load_folds(source: Any, split: str | None = None) -> Any:
    """Read a split back from the store (by fingerprint) or a parquet file."""
    import polars as pl

    if hasattr(source, "read") and hasattr(source, "replace"):
        from pmx.featurestore import sql_literal

        where = f"split = {sql_literal(split)}" if split else None
        table = source.read("splits", where=where)
        if table.height == 0:
            raise DataError(f"no split {split!r} in the store {getattr(source, 'uri', source)}; "
                            "create the folds first")
        if split is None and table["split"].n_unique() > 1:
            raise DataError(
                f"the store holds {table['split'].n_unique()} splits; pass one of: "
                f"{', '.join(sorted(table['split'].unique().to_list()))}"
            )
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"folds file {path} does not exist")
        table = pl.read_parquet(path)
        if split is not None:
            table = table.filter(pl.col("split") == split)
    return table.select("split", "seed", "fold", "patient_id", "part").sort(["fold", "patient_id"])
