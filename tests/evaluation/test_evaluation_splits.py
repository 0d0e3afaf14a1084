"""Patient-level stratified folds with inner validation splits."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pmx.errors import ConfigError, DataError
from pmx.evaluation import (
    fold_members,
    folds_from_table,
    load_folds,
    make_folds,
    save_folds,
    tissue_source_site,
)

SITES = ["A1", "B2", "C3", "D4", "E5", "F6"]


def _cohort(n=120, event_rate=0.3, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"TCGA-{SITES[i % len(SITES)]}-{i:04d}" for i in range(n)]
    event = rng.random(n) < event_rate
    time = rng.uniform(10, 3000, n)
    return ids, event, time


def test_each_patient_is_tested_exactly_once_and_parts_partition_each_fold():
    ids, event, time = _cohort()
    folds = make_folds(ids, event, time=time, n_folds=5, seed=3)
    assert folds.columns == ["split", "seed", "fold", "patient_id", "part"]
    assert folds.height == 5 * len(ids)
    tested = folds.filter(pl.col("part") == "test")
    assert sorted(tested["patient_id"].to_list()) == sorted(ids)  # once each
    for fold in range(5):
        parts = fold_members(folds, fold)
        sets = {k: set(v) for k, v in parts.items()}
        assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"])
        assert not (sets["val"] & sets["test"])
        assert sets["train"] | sets["val"] | sets["test"] == set(ids)
        assert 0.15 < len(sets["val"]) / (len(sets["train"]) + len(sets["val"])) < 0.25


def test_folds_are_stratified_by_event():
    ids, event, _ = _cohort(n=200, event_rate=0.25)
    folds = make_folds(ids, event, n_folds=5, seed=0)
    by_id = dict(zip(ids, event))
    events_per_fold = [
        sum(by_id[p] for p in fold_members(folds, k)["test"]) for k in range(5)
    ]
    assert max(events_per_fold) - min(events_per_fold) <= 1
    for k in range(5):
        val = fold_members(folds, k)["val"]
        assert sum(by_id[p] for p in val) >= 1  # validation C-index is defined


def test_deterministic_for_a_seed_and_independent_of_input_order():
    ids, event, _ = _cohort()
    first = make_folds(ids, event, seed=7)
    again = make_folds(ids, event, seed=7)
    assert first.equals(again)
    perm = np.random.default_rng(1).permutation(len(ids))
    shuffled = make_folds([ids[i] for i in perm], event[perm], seed=7)
    assert first.sort(["fold", "patient_id"]).equals(shuffled.sort(["fold", "patient_id"]))
    other = make_folds(ids, event, seed=8)
    assert not first.equals(other)
    assert first["split"][0] != other["split"][0]


def test_site_stratification_spreads_each_site_over_folds():
    assert tissue_source_site("TCGA-A2-A0T2-01A-11R") == "A2"
    assert tissue_source_site("tcga-bh-a0b3") == "BH"
    with pytest.raises(DataError, match="not a TCGA barcode"):
        tissue_source_site("patient-7")
    ids, event, _ = _cohort(n=180, event_rate=0.4, seed=2)
    folds = make_folds(ids, event, n_folds=5, seed=0, stratify_site=True)
    tests = folds.filter(pl.col("part") == "test").with_columns(
        pl.col("patient_id").str.slice(5, 2).alias("site"))
    per_site = tests.group_by(["site", "fold"]).len()
    counts = per_site.pivot(on="fold", index="site", values="len").fill_null(0)
    spread = counts.select(pl.exclude("site")).to_numpy()
    assert (spread.max(axis=1) - spread.min(axis=1)).max() <= 2
    assert folds["split"][0] != make_folds(ids, event, n_folds=5, seed=0)["split"][0]


@pytest.mark.parametrize(
    "ids, event, options, error, message",
    [
        (["a", "b", "c", "d", "e", "f"], [1, 1, 0, 0, 0, 0], {}, DataError, "only 2 event"),
        (["a", "a", "b", "c", "d", "e"], [1, 1, 1, 1, 1, 0], {"n_folds": 2}, DataError, "appears twice"),
        (["a", "b", "c"], [1, 2, 1], {"n_folds": 2}, DataError, "must be 0 or 1"),
        (["a", "b", "c"], [1, 1, 0], {"n_folds": 1}, ConfigError, "n_folds must be >= 2"),
        (["a", "b", "c"], [1, 1], {"n_folds": 2}, DataError, "mismatched lengths"),
        (["x-1", "x-2", "x-3", "x-4"], [1, 1, 0, 0], {"n_folds": 2, "stratify_site": True}, DataError, "TCGA barcode"),
    ],
)
def test_bad_input_raises(ids, event, options, error, message):
    with pytest.raises(error, match=message):
        make_folds(ids, event, **options)


def test_bad_times_are_rejected_when_given():
    with pytest.raises(DataError, match="must be > 0"):
        make_folds(["a", "b", "c", "d"], [1, 1, 0, 0], time=[1.0, 0.0, 2.0, 3.0], n_folds=2)


def test_from_table_and_parquet_round_trip(tmp_path):
    ids, event, time = _cohort(n=60)
    table = pl.DataFrame({"patient_id": ids, "event": event.astype(int), "time": time})
    folds = folds_from_table(table, n_folds=3, seed=1)
    assert folds.equals(make_folds(ids, event, n_folds=3, seed=1))
    split = save_folds(folds, tmp_path / "folds.parquet")
    loaded = load_folds(tmp_path / "folds.parquet", split)
    assert loaded.equals(folds.sort(["fold", "patient_id"]))
    with pytest.raises(DataError, match="no column"):
        folds_from_table(table.drop("event"))


def test_store_round_trip_replaces_instead_of_duplicating(tmp_path):
    featurestore = pytest.importorskip("pmx.featurestore")
    store = featurestore.open_store(tmp_path / "store")
    ids, event, _ = _cohort(n=40)
    folds = make_folds(ids, event, n_folds=4, seed=0)
    split = save_folds(folds, store)
    save_folds(folds, store)  # rerun: no duplicates
    other = make_folds(ids, event, n_folds=4, seed=1)
    save_folds(other, store)
    loaded = load_folds(store, split)
    assert loaded.height == folds.height
    assert loaded.equals(folds.sort(["fold", "patient_id"]))
    with pytest.raises(DataError, match="holds 2 splits"):
        load_folds(store)
