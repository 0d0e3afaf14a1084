"""Metrics against scikit-survival, brute force and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pmx.errors import DataError
from pmx.survival import (
    antolini_c,
    bootstrap_c_index,
    breslow_survival,
    cumulative_dynamic_auc,
    harrell_c,
    integrated_brier,
    survival_at,
    uno_c,
)
from pmx.survival.checks import structured_y


def _brute_force_harrell(time, event, risk):
    concordant = comparable = 0.0
    n = len(time)
    for i in range(n):
        if not event[i]:
            continue
        for j in range(n):
            if time[i] < time[j] or (time[i] == time[j] and not event[j]):
                comparable += 1
                tie = abs(risk[i] - risk[j]) <= 1e-8  # sksurv's tied_tol
                concordant += 0.5 if tie else 1.0 if risk[i] > risk[j] else 0.0
    return concordant / comparable


@pytest.fixture(scope="module")
def tied_sample():
    rng = np.random.default_rng(7)
    n = 200
    time = rng.integers(1, 30, n).astype(float)  # ties in time
    event = rng.random(n) < 0.55
    risk = rng.integers(0, 4, n).astype(float) - 0.2 * time  # exact and float-rounding ties in risk
    return time, event, risk


def test_harrell_equals_sksurv_and_brute_force_with_ties(tied_sample):
    from sksurv.metrics import concordance_index_censored

    time, event, risk = tied_sample
    reference = concordance_index_censored(event, time, risk)[0]
    assert abs(harrell_c(time, event, risk) - reference) < 1e-12
    assert abs(_brute_force_harrell(time, event, risk) - reference) < 1e-12
    assert 0.55 < reference < 0.95  # risk carries signal: a meaningful comparison


@pytest.mark.parametrize(
    "time, event, risk, message",
    [
        ([1.0, np.nan, 3.0], [1, 0, 1], [0.1, 0.2, 0.3], "missing/NaN"),
        ([1.0, 0.0, 3.0], [1, 0, 1], [0.1, 0.2, 0.3], "must be > 0"),
        ([1.0, -2.0, 3.0], [1, 0, 1], [0.1, 0.2, 0.3], "must be > 0"),
        ([1.0, 2.0, 3.0], [1, 2, 1], [0.1, 0.2, 0.3], "must be 0 or 1"),
        ([1.0, 2.0, 3.0], [1, 0], [0.1, 0.2, 0.3], "mismatched lengths"),
        ([1.0, 2.0, 3.0], [1, 0, 1], [0.1, np.nan, 0.3], "risk has 1 NaN"),
        ([1.0, 2.0, 3.0], [0, 0, 0], [0.1, 0.2, 0.3], "no comparable pair"),
    ],
)
def test_bad_input_raises_clear_data_error(time, event, risk, message):
    with pytest.raises(DataError, match=message):
        harrell_c(time, event, risk)


def test_errors_name_the_patient():
    with pytest.raises(DataError, match="patient P2"):
        harrell_c([1.0, -1.0], [1, 0], [0.0, 1.0], ids=["P1", "P2"])


def test_bootstrap_replicates_are_exact_and_ci_is_sane(tied_sample):
    from sksurv.metrics import concordance_index_censored

    from pmx.survival.metrics import _pair_matrices

    time, event, risk = tied_sample
    # a resample as multiplicity weights gives exactly sksurv's C on the resampled rows
    comparable, concordant = _pair_matrices(time, event, risk)
    rng = np.random.default_rng(0)
    for _ in range(3):
        rows = rng.integers(0, len(time), len(time))
        w = np.bincount(rows, minlength=len(time)).astype(float)
        exact = concordance_index_censored(event[rows], time[rows], risk[rows])[0]
        assert abs(w @ concordant @ w / (w @ comparable @ w) - exact) < 1e-12
    result = bootstrap_c_index(time, event, risk, n_boot=500, seed=1)
    assert result["lower"] < result["c_index"] < result["upper"]
    assert 0.02 < result["upper"] - result["lower"] < 0.3
    assert result == bootstrap_c_index(time, event, risk, n_boot=500, seed=1)  # deterministic
    assert result["lower"] != bootstrap_c_index(time, event, risk, n_boot=500, seed=2)["lower"]


def test_uno_c_matches_sksurv(tied_sample):
    from sksurv.metrics import concordance_index_ipcw

    time, event, risk = tied_sample
    train = (time[:120], event[:120])
    reference = concordance_index_ipcw(structured_y(*train), structured_y(time[120:], event[120:]),
                                       risk[120:], tau=train[0].max())[0]
    assert uno_c(*train, time[120:], event[120:], risk[120:]) == pytest.approx(reference, abs=1e-12)


def test_antolini_hand_computed_case():
    # Three patients on a grid of 3 times. Pairs comparable: (0,1), (0,2) [t0 < t1, t2], (1,2).
    time = np.array([1.0, 2.0, 3.0])
    event = np.array([True, True, False])
    grid = np.array([1.0, 2.0, 3.0])
    surv = np.array([
        [0.5, 0.4, 0.3],  # patient 0: S_0(1) = 0.5
        [0.6, 0.5, 0.4],  # patient 1: S_1(1) = 0.6 > 0.5 -> (0,1) concordant; S_1(2) = 0.5
        [0.4, 0.6, 0.5],  # patient 2: S_2(1) = 0.4 < 0.5 -> (0,2) discordant; S_2(2) = 0.6 -> (1,2) concordant
    ])
    assert antolini_c(time, event, surv, grid) == pytest.approx(2 / 3, abs=1e-15)
    # a tie in S is discordant for Antolini, one half for the adjusted version
    surv_tie = surv.copy()
    surv_tie[2, 0] = 0.5
    assert antolini_c(time, event, surv_tie, grid) == pytest.approx(2 / 3)
    assert antolini_c(time, event, surv_tie, grid, method="adj_antolini") == pytest.approx(2.5 / 3)


def test_antolini_equals_harrell_for_proportional_hazards_curves():
    # Under proportional hazards the curves never cross, so S_i(t) < S_j(t) <=> r_i > r_j.
    rng = np.random.default_rng(11)
    n = 150
    time = rng.uniform(1, 100, n)
    event = rng.random(n) < 0.6
    risk = rng.normal(size=n)
    grid = np.linspace(1, 100, 80)
    baseline = np.exp(-np.linspace(0.01, 2.0, 80))
    surv = baseline[None, :] ** np.exp(risk)[:, None]
    from sksurv.metrics import concordance_index_censored

    assert antolini_c(time, event, surv, grid) == pytest.approx(
        concordance_index_censored(event, time, risk)[0], abs=1e-12)


def test_auc_and_integrated_brier_match_sksurv():
    from sksurv.datasets import load_whas500
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.metrics import cumulative_dynamic_auc as sk_auc
    from sksurv.metrics import integrated_brier_score

    X, y = load_whas500()
    x = X[["age", "bmi", "hr"]].to_numpy(float)
    time, event = np.ascontiguousarray(y["lenfol"]), np.ascontiguousarray(y["fstat"])
    order = np.random.default_rng(0).permutation(len(y))  # the file is sorted by follow-up
    order = np.concatenate([[np.argmax(time)], order[order != np.argmax(time)]])
    train, test = order[:350], order[350:]  # sksurv needs test times within training follow-up
    model = CoxPHSurvivalAnalysis().fit(x[train], y[train])
    risk = model.predict(x[test])
    times = np.array([100.0, 300.0, 700.0, 1200.0])
    auc, mean, grid = cumulative_dynamic_auc(time[train], event[train], time[test], event[test], risk, times)
    ref_auc, ref_mean = sk_auc(y[train], y[test], risk, times)
    np.testing.assert_allclose(auc, ref_auc, atol=1e-12)
    assert mean == pytest.approx(ref_mean, abs=1e-12) and mean > 0.6

    # Breslow curves from training risks reproduce sksurv's own survival predictions
    surv = breslow_survival(model.predict(x[train]), time[train], event[train], risk, times)
    reference = np.vstack([fn(times) for fn in model.predict_survival_function(x[test])])
    np.testing.assert_allclose(surv, reference, atol=1e-10)
    ibs = integrated_brier(time[train], event[train], time[test], event[test], surv, times=times)
    assert ibs == pytest.approx(integrated_brier_score(y[train], y[test], reference, times), abs=1e-12)
    assert 0.0 < ibs < 0.25


def test_survival_at_is_a_right_continuous_step_function():
    surv = np.array([[0.9, 0.7, 0.4]])
    grid = np.array([10.0, 20.0, 30.0])
    np.testing.assert_allclose(survival_at(surv, grid, [5, 10, 15, 29.9, 30, 99]), [[1, 0.9, 0.9, 0.7, 0.4, 0.4]])
