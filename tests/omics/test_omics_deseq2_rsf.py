"""deseq2-rsf end to end on a small synthetic cohort with planted survival features.

Real PyDESeq2 and scikit-survival run here; sizes are small (80 patients, a few hundred
features, 100 trees) so the module takes well under a minute on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmx.plugins import BUILTIN_PLUGINS, load_host
from pmx.omics.deseq2_rsf import PAD_PREFIX, DESeq2RSFSelector
from pmx.omics.synthetic import make_synthetic_omics

TOP_K = 20
# min_candidates > top_k: the forest must choose 20 of the 60 smallest p-values
SMALL = dict(top_k=TOP_K, n_estimators=100, min_candidates=60, n_repeats=3, seed=0)


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_omics(n_patients=80, n_genes=300, n_mirna=150, n_methylation=300,
                                n_planted=10, effect=0.8, seed=0)


@pytest.fixture(scope="module")
def split(cohort):
    ids = cohort.survival.index.to_numpy()
    rng = np.random.default_rng(1)
    order = rng.permutation(ids)
    return sorted(order[:64]), sorted(order[64:])


@pytest.fixture(scope="module")
def fitted(cohort, split):
    train, _ = split
    selector = DESeq2RSFSelector(**SMALL)
    selector.fit(cohort.omics, cohort.survival.loc[train])
    return selector


def test_registered_as_selector():
    host = load_host(entry_points=[], builtins=["pmx.omics.plugin"])
    assert not host.errors
    assert host.registry.names("selector") == ["deseq2-rsf", "gene-families", "quantile-normal"]
    cls = host.registry.get("selector", "deseq2-rsf")
    assert cls is DESeq2RSFSelector
    assert DESeq2RSFSelector().config.top_k == 300
    assert "pmx.omics.plugin" in BUILTIN_PLUGINS


def test_recovers_planted_features_better_than_chance(cohort, fitted):
    for kind in ("rna", "mirna", "methylation"):
        selected = fitted.selected_features_[kind]
        assert len(selected) == TOP_K
        n_features = cohort.omics[kind].shape[1]
        hits = len(set(selected) & set(cohort.planted[kind]))
        chance = TOP_K * len(cohort.planted[kind]) / n_features  # expected hits of a random pick
        assert hits >= max(7, 5 * chance), (kind, hits, chance, fitted.report_[kind])
    # the count types went through PyDESeq2, methylation through the rank test
    assert fitted.report_["rna"]["test"] == "pydeseq2-wald"
    assert fitted.report_["methylation"]["test"] == "mann-whitney-u"
    assert fitted.report_["rna"]["forest_oob_c_index"] > 0.6


def test_output_is_scaled_on_training_patients(cohort, split, fitted):
    train, test = split
    out = fitted.transform(cohort.omics)
    for kind, frame in out.items():
        assert list(frame.columns) == fitted.selected_features_[kind]
        assert frame.shape == (80, TOP_K)
        assert np.isfinite(frame.to_numpy()).all()
        train_values = frame.loc[train].to_numpy()
        np.testing.assert_allclose(train_values.mean(axis=0), 0.0, atol=1e-9)
        np.testing.assert_allclose(train_values.std(axis=0), 1.0, atol=1e-9)
        # test patients are transformed with training parameters, so they are not exactly standardised
        assert not np.allclose(frame.loc[test].to_numpy().mean(axis=0), 0.0, atol=1e-6)


def test_counts_are_size_factor_normalised_log1p(cohort, split, fitted):
    """Doubling a patient's library (all counts x2) leaves its output unchanged."""
    _, test = split
    doubled = {k: v.copy() for k, v in cohort.omics.items()}
    doubled["rna"].loc[test[0]] *= 2
    a = fitted.transform(cohort.omics)["rna"].loc[test[0]]
    b = fitted.transform(doubled)["rna"].loc[test[0]]
    # log1p(2c / 2s) == log1p(c / s) exactly; rounding aside the outputs agree
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-9)


def test_leak_free_test_patient_values_do_not_change_selection(cohort, split, fitted):
    train, test = split
    changed = {k: v.copy() for k, v in cohort.omics.items()}
    rng = np.random.default_rng(5)
    for patient in test[:3]:
        changed["rna"].loc[patient] = rng.integers(0, 10_000, size=changed["rna"].shape[1])
        changed["mirna"].loc[patient] = rng.integers(0, 50, size=changed["mirna"].shape[1])
        changed["methylation"].loc[patient] = rng.random(changed["methylation"].shape[1])
    # a survival table that also lists test patients must not matter either: fit uses its rows only
    again = DESeq2RSFSelector(**SMALL).fit(changed, cohort.survival.loc[train])
    assert again.selected_features_ == fitted.selected_features_
    before = fitted.transform(cohort.omics)
    after = again.transform(changed)
    for kind in before:
        pd.testing.assert_frame_equal(before[kind].loc[train], after[kind].loc[train])
        # the changed test patients are transformed differently, the others identically
        untouched = [p for p in test if p not in test[:3]]
        pd.testing.assert_frame_equal(before[kind].loc[untouched], after[kind].loc[untouched])


def test_padding_when_fewer_features_survive(cohort, split):
    train, _ = split
    small = {"mirna": cohort.omics["mirna"].iloc[:, :40]}
    selector = DESeq2RSFSelector(top_k=60, n_estimators=30, min_candidates=60, n_repeats=1)
    selector.fit(small, cohort.survival.loc[train])
    names = selector.selected_features_["mirna"]
    assert len(names) == 60
    real = [n for n in names if not n.startswith(PAD_PREFIX)]
    assert 0 < len(real) <= 40
    out = selector.transform(small)["mirna"]
    assert out.shape[1] == 60
    assert (out[[n for n in names if n.startswith(PAD_PREFIX)]].to_numpy() == 0).all()


def test_selection_fingerprint_depends_on_training_patients_and_data(cohort, split):
    train, test = split
    selector = DESeq2RSFSelector(**SMALL)
    key = selector.selection_fingerprint(train, cohort.omics)
    assert key == DESeq2RSFSelector(**SMALL).selection_fingerprint(list(reversed(train)), cohort.omics)
    assert key != selector.selection_fingerprint(train[1:], cohort.omics)
    assert key != DESeq2RSFSelector(**{**SMALL, "top_k": 10}).selection_fingerprint(train, cohort.omics)
    changed = {k: v.copy() for k, v in cohort.omics.items()}
    changed["rna"].iloc[changed["rna"].index.get_loc(train[0]), 0] += 1
    assert key != selector.selection_fingerprint(train, changed)
    # test-patient values are not part of the key
    changed = {k: v.copy() for k, v in cohort.omics.items()}
    changed["rna"].loc[test[0]] += 1
    assert key == selector.selection_fingerprint(train, changed)
