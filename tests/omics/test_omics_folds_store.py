"""Selection per fold: training parts only, every patient transformed, cached in a real LanceDB store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmx.evaluation.splits import fold_members, make_folds
from pmx.omics.folds import fold_training_sets, select_folds, selection_report
from pmx.omics.quantile_normal import QuantileNormalSelector
from pmx.omics.synthetic import make_synthetic_omics


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_omics(n_patients=40, n_genes=80, n_methylation=60, n_planted=5, seed=4)


@pytest.fixture(scope="module")
def folds(cohort):
    s = cohort.survival
    return make_folds(list(s.index), s["event"].to_numpy(), n_folds=3, seed=0)


def _selector():
    return QuantileNormalSelector(patch_size=16, patch_sizes={}, max_features=30)


def test_each_fold_is_fit_on_its_training_part_only(cohort, folds):
    results = select_folds(_selector(), cohort.omics, cohort.survival, folds, progress=False)
    assert [r.fold for r in results] == [0, 1, 2]
    for r in results:
        members = fold_members(folds, r.fold)
        assert r.train_patients == sorted(members["train"])
        assert not set(r.train_patients) & set(members["test"] + members["val"])
        # the same as fitting directly on those patients
        direct = _selector().fit(cohort.omics, cohort.survival.loc[members["train"]])
        assert r.features == direct.selected_features_
        expected = direct.transform(cohort.omics)
        for kind, frame in r.vectors.items():
            pd.testing.assert_frame_equal(frame, expected[kind])
            assert set(frame.index) == set(cohort.survival.index)  # every patient, test fold included
    with_val = fold_training_sets(folds, ("train", "val"))
    assert len(with_val[0][1]) > len(results[0].train_patients)


def test_store_cache_hit_force_and_changed_inputs(tmp_path, cohort, folds):
    from pmx.featurestore import open_store, read_omics

    store = open_store(tmp_path / "store")
    first = select_folds(_selector(), cohort.omics, cohort.survival, folds, store=store, progress=False)
    assert not any(r.cached for r in first)
    second = select_folds(_selector(), cohort.omics, cohort.survival, folds, store=store, progress=False)
    assert all(r.cached for r in second)
    for a, b in zip(first, second):
        assert a.key == b.key and a.features == b.features
        for kind in a.vectors:
            np.testing.assert_allclose(b.vectors[kind].loc[a.vectors[kind].index].to_numpy(),
                                       a.vectors[kind].to_numpy(), atol=1e-6)  # stored as float32
    # the rows are addressable by the fold's selection key (selector + training patients)
    stored = read_omics(store, modality="rna", source=first[0].key, fold=0)
    assert stored.features == first[0].features["rna"]
    assert store.count("omics", f"source = '{first[0].key}'") == 2 * 40  # rna + methylation rows
    # a rerun never duplicates
    select_folds(_selector(), cohort.omics, cohort.survival, folds, store=store, force=True, progress=False)
    assert store.count("omics", f"source = '{first[0].key}'") == 2 * 40

    # new values for a test patient of fold 0: fold 0 keeps its key and selection but its vectors
    # are recomputed; folds 1 and 2 train on that patient, so their keys change
    test_patient = fold_members(folds, 0)["test"][0]
    changed = {k: v.copy() for k, v in cohort.omics.items()}
    changed["rna"].loc[test_patient] = changed["rna"].loc[test_patient] * 3
    third = select_folds(_selector(), changed, cohort.survival, folds, store=store, progress=False)
    assert not any(r.cached for r in third)
    assert third[0].key == first[0].key and third[0].features == first[0].features
    assert third[1].key != first[1].key and third[2].key != first[2].key
    assert not np.allclose(third[0].vectors["rna"].loc[test_patient], first[0].vectors["rna"].loc[test_patient])


def test_report_lists_features_and_stability(cohort, folds):
    results = select_folds(_selector(), cohort.omics, cohort.survival, folds, progress=False)
    report = selection_report(results)
    assert [f["fold"] for f in report["folds"]] == [0, 1, 2]
    rna = report["folds"][0]["groups"]["rna"]
    assert rna["selected"] == 30 and rna["width"] == 32 and len(rna["features"]) == 30
    assert 0 < report["stability"]["rna"]["in_every_fold"] <= 30
