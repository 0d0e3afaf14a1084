"""Numbers of the building blocks against the references they re-implement or call.

Concordance vs scikit-survival, out-of-bag predictions vs scikit-survival's own OOB score,
permutation importance vs a brute-force recomputation with ``SurvivalTree.predict``, minimal
depth vs a recursive walk, size factors vs PyDESeq2, the rank test vs scipy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu
from sksurv.ensemble import RandomSurvivalForest
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from pmx.omics.deseq import SizeFactors, prefilter_counts
from pmx.omics.groups import survival_groups
from pmx.omics.rsf import forest_importance, harrell_c_many, minimal_depth, oob_indices
from pmx.omics.univariate import adjust_bh, mann_whitney, pick_candidates


@pytest.fixture(scope="module")
def survival_data():
    rng = np.random.default_rng(0)
    n, p = 90, 12
    X = rng.normal(size=(n, p)).astype(np.float32)
    risk = 1.5 * X[:, 0] - 1.2 * X[:, 1]
    t = np.round(rng.exponential(np.exp(-risk)) * 30) + 1  # rounded: ties in time
    c = np.round(rng.exponential(1.5, size=n) * 30) + 1
    return X, np.minimum(t, c).astype(float), t <= c


def test_harrell_c_matches_sksurv_with_ties(survival_data):
    _, time, event = survival_data
    rng = np.random.default_rng(1)
    risks = rng.normal(size=(5, time.size))
    risks[1] = np.round(risks[1])  # ties in risk
    risks[2, :30] = 0.0
    ours = harrell_c_many(time, event, risks)
    for row, value in zip(risks, ours):
        assert value == pytest.approx(concordance_index_censored(event, time, row)[0], abs=1e-12)


def test_oob_c_index_matches_sksurv_oob_score(survival_data):
    X, time, event = survival_data
    ours = forest_importance(X, time, event, n_estimators=40, min_samples_leaf=3, seed=3, method="permutation",
                             n_repeats=1)
    assert ours.oob
    reference = RandomSurvivalForest(n_estimators=40, min_samples_leaf=3, max_features="sqrt", random_state=3,
                                     oob_score=True, low_memory=False).fit(X, Surv.from_arrays(event, time))
    assert ours.oob_c_index == pytest.approx(reference.oob_score_, abs=1e-12)


def test_permutation_importance_equals_brute_force(survival_data):
    X, time, event = survival_data
    seed, repeats = 4, 2
    fi = forest_importance(X, time, event, n_estimators=25, min_samples_leaf=3, seed=seed, method="permutation",
                           n_repeats=repeats)
    forest = fi.forest
    bags = oob_indices(forest, len(time))
    n = len(time)

    def oob_c(matrix):
        total, count = np.zeros(n), np.zeros(n)
        for tree, rows in zip(forest.estimators_, bags):
            total[rows] += tree.predict(matrix[rows])
            count[rows] += 1
        ok = count > 0
        return concordance_index_censored(event[ok], time[ok], total[ok] / count[ok])[0]

    base = oob_c(X)
    assert fi.oob_c_index == pytest.approx(base, abs=1e-12)
    for j in (0, 1, 7):
        drops = []
        for r in range(repeats):
            permuted = X.copy()
            permuted[:, j] = X[np.random.default_rng([seed, r, j]).permutation(n), j]
            drops.append(base - oob_c(permuted))
        assert fi.importance[j] == pytest.approx(np.mean(drops), abs=1e-12)
    assert (fi.importance[~fi.used] == 0).all()
    # the two planted columns are the most important
    assert set(np.argsort(-fi.importance)[:2]) == {0, 1}


def test_minimal_depth_matches_recursive_walk(survival_data):
    X, time, event = survival_data
    fi = forest_importance(X, time, event, n_estimators=10, min_samples_leaf=3, seed=0)
    p = X.shape[1]
    expected = np.zeros(p)
    for tree in fi.forest.estimators_:
        t = tree.tree_
        first = {}

        def walk(node, depth):
            if t.children_left[node] < 0:
                return depth
            f = int(t.feature[node])
            first[f] = min(first.get(f, depth), depth)
            return max(walk(t.children_left[node], depth + 1), walk(t.children_right[node], depth + 1))

        max_depth = walk(0, 0)
        expected += [first.get(j, max_depth + 1) for j in range(p)]
    expected /= len(fi.forest.estimators_)
    np.testing.assert_allclose(minimal_depth(fi.forest, p), expected)
    np.testing.assert_allclose(fi.importance, -expected)
    assert set(np.argsort(-fi.importance)[:2]) == {0, 1}


def test_size_factors_match_pydeseq2():
    from pydeseq2.dds import DeseqDataSet

    rng = np.random.default_rng(0)
    lib = np.exp(rng.normal(0, 0.4, size=10))
    counts = pd.DataFrame(rng.poisson(lib[:, None] * rng.gamma(2.0, 30.0, size=40)[None, :]),
                          index=[f"p{i}" for i in range(10)], columns=[f"g{j}" for j in range(40)])
    counts.iloc[0, :5] = 0  # genes with a zero are not reference genes
    metadata = pd.DataFrame({"condition": ["high"] * 5 + ["low"] * 5}, index=counts.index)
    dds = DeseqDataSet(counts=counts, metadata=metadata, quiet=True)
    dds.fit_size_factors()
    ours = SizeFactors().fit(counts)
    assert len(ours.genes_) == 35
    np.testing.assert_allclose(ours.factors(counts).to_numpy(), dds.obs["size_factors"].to_numpy(), rtol=1e-10)
    # a new patient is normalised against the training reference: scaling its counts scales its factor
    new = counts.iloc[[3]] * 3
    assert ours.factors(new).iloc[0] == pytest.approx(3 * ours.factors(counts).iloc[3])


def test_prefilter_keeps_expressed_genes_then_caps_by_mean():
    counts = pd.DataFrame({"low": [0, 1, 2, 50], "mid": [10, 12, 9, 11], "high": [100, 90, 120, 80],
                           "rare": [0, 0, 0, 400]}, index=list("abcd"))
    sf = pd.Series(1.0, index=counts.index)
    assert prefilter_counts(counts, min_count=10, min_samples=2, max_genes=0, size_factors=sf) == ["mid", "high"]
    assert prefilter_counts(counts, min_count=10, min_samples=1, max_genes=2, size_factors=sf) == ["high", "rare"]


def test_mann_whitney_and_bh_match_scipy():
    rng = np.random.default_rng(2)
    values = pd.DataFrame(rng.random((30, 6)), index=[f"p{i}" for i in range(30)], columns=list("abcdef"))
    values.iloc[:12, 0] += 0.8
    labels = pd.Series(["high"] * 12 + ["low"] * 18, index=values.index)
    result = mann_whitney(values, labels)
    for column in values:
        expected = mannwhitneyu(values[column].iloc[:12], values[column].iloc[12:], method="asymptotic").pvalue
        assert result.loc[column, "pvalue"] == pytest.approx(expected, rel=1e-12)
    p = result["pvalue"].to_numpy()
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    bh = np.minimum.accumulate(ranked[::-1])[::-1]
    np.testing.assert_allclose(np.sort(adjust_bh(p)), np.minimum(bh, 1.0))
    assert result["pvalue"].idxmin() == "a"


def test_candidates_threshold_fallback_and_cap():
    tests = pd.DataFrame({"pvalue": [0.001, 0.2, 0.0001, np.nan, 0.03],
                          "padj": [0.004, 0.4, 0.001, np.nan, 0.06]}, index=list("abcde"))
    passed = pick_candidates(tests, alpha=0.05, min_features=1, max_features=0)
    assert passed.features == ["c", "a"] and passed.rule == "padj < 0.05"
    fallback = pick_candidates(tests, alpha=0.05, min_features=4, max_features=0)
    assert fallback.features == ["c", "a", "e", "b"] and fallback.rule.startswith("fallback")
    capped = pick_candidates(tests, alpha=0.5, min_features=1, max_features=1)
    assert capped.features == ["c"] and capped.rule.startswith("capped")


def test_survival_groups_rule():
    survival = pd.DataFrame({
        "time": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        "event": [True, True, False, True, True, False, True, False, False],
    }, index=[f"p{i}" for i in range(9)])
    groups = survival_groups("rna", survival, min_group_size=2)
    assert groups.median == 5.0
    assert groups.high == ["p0", "p1", "p3", "p4"]  # died at or before the median
    assert groups.low == ["p5", "p6", "p7", "p8"]  # followed beyond the median, dead or alive
    assert groups.excluded == ["p2"]  # censored before the median: outcome unknown
    assert groups.labels().to_dict()["p0"] == "high"


def test_vectorized_dispersions_match_pydeseq2_default_inference():
    """The fast inference reaches PyDESeq2's own dispersions and p-values (same objective)."""
    from pydeseq2.default_inference import DefaultInference

    from pmx.omics.deseq import run_deseq2
    from pmx.omics.fast_inference import VectorizedDispersionInference, dispersion_loss
    from pmx.omics.synthetic import make_synthetic_omics

    data = make_synthetic_omics(n_patients=40, n_genes=120, n_planted=10, effect=1.0, seed=5)
    counts = data.omics["rna"]
    counts = counts[counts.columns[(counts >= 10).sum() >= 10]]
    labels = pd.Series(np.where(data.risk > data.risk.median(), "high", "low"), index=counts.index)
    fast = run_deseq2(counts, labels, inference="vectorized")
    slow = run_deseq2(counts, labels, inference="pydeseq2")
    np.testing.assert_allclose(fast["log2FoldChange"], slow["log2FoldChange"], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(np.log10(fast["pvalue"]), np.log10(slow["pvalue"]), rtol=1e-3, atol=1e-4)
    assert ((fast["padj"] < 0.05) == (slow["padj"] < 0.05)).all()
    assert (fast["padj"] < 0.05).sum() >= 5  # the planted genes are found

    # the minimiser: per gene, no grid point of the bounded interval has a lower objective
    rng = np.random.default_rng(0)
    y = rng.negative_binomial(5, 0.1, size=(30, 8)).astype(float)
    mu = np.full_like(y, y.mean(axis=0))
    design = np.column_stack([np.ones(30), np.repeat([0.0, 1.0], 15)])
    alpha, converged = VectorizedDispersionInference(n_cpus=1).alpha_mle(
        y, design, mu, np.full(8, 0.1), 1e-8, 10.0)
    assert converged.all()
    best = dispersion_loss(np.log(alpha), y, mu, design, True, None)
    for t in np.linspace(np.log(1e-8), np.log(10.0), 400):
        assert (best <= dispersion_loss(np.full(8, t), y, mu, design, True, None) + 1e-9).all()
    reference = DefaultInference(n_cpus=1).alpha_mle(y, design, mu, np.full(8, 0.1), 1e-8, 10.0)[0]
    np.testing.assert_allclose(alpha, reference, rtol=1e-3)
