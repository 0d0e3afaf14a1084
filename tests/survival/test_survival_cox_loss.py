"""cox_loss against scikit-survival / lifelines fits and a direct per-event formula."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from pmx.errors import DataError
from pmx.survival import cox_loss

COLUMNS = ["age", "bmi", "hr", "sysbp", "diasbp"]


@pytest.fixture(scope="module")
def whas500():
    from sksurv.datasets import load_whas500

    X, y = load_whas500()
    x = X[COLUMNS].to_numpy(dtype=np.float64)
    time = np.ascontiguousarray(y["lenfol"], dtype=np.float64)
    event = np.ascontiguousarray(y["fstat"]).astype(bool)
    # the dataset has many tied times (395 distinct among 500), so ties matter
    assert len(np.unique(time[event])) < event.sum()
    return x, time, event


def _fit_linear_cox(x: np.ndarray, time: np.ndarray, event: np.ndarray, ties: str) -> np.ndarray:
    """Minimise cox_loss of a linear model with LBFGS in float64 (on standardised columns)."""
    mean, sd = x.mean(0), x.std(0)
    z = torch.tensor((x - mean) / sd)
    t, e = torch.tensor(time), torch.tensor(event)
    beta = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([beta], lr=1.0, max_iter=200, tolerance_grad=1e-11,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = cox_loss(z @ beta, t, e, ties=ties)
        loss.backward()
        return loss

    optimiser.step(closure)
    return beta.detach().numpy() / sd


def test_breslow_fit_reproduces_sksurv_coxph(whas500):
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    x, time, event = whas500
    reference = CoxPHSurvivalAnalysis(ties="breslow").fit(x, Surv.from_arrays(event, time)).coef_
    fitted = _fit_linear_cox(x, time, event, "breslow")
    np.testing.assert_allclose(fitted, reference, atol=1e-4, rtol=0)
    assert np.abs(reference).max() > 1e-3  # a non-trivial fit


def test_efron_fit_reproduces_lifelines_coxph(whas500):
    from lifelines import CoxPHFitter

    x, time, event = whas500
    frame = pd.DataFrame(x, columns=COLUMNS).assign(T=time, E=event.astype(int))
    reference = CoxPHFitter(penalizer=0.0).fit(frame, "T", "E").params_[COLUMNS].to_numpy()
    fitted = _fit_linear_cox(x, time, event, "efron")
    np.testing.assert_allclose(fitted, reference, atol=1e-4, rtol=0)


def _direct_nll(risk, time, event, ties):
    """Per-event textbook formula with explicit loops (float64)."""
    total = 0.0
    for tt in np.unique(time[event]):
        tied = np.flatnonzero((time == tt) & event)
        at_risk = time >= tt
        s_r = np.exp(risk[at_risk]).sum()
        s_d = np.exp(risk[tied]).sum()
        d = len(tied)
        for rank, i in enumerate(tied):
            total -= risk[i]
            if ties == "breslow":
                total += math.log(s_r)
            else:
                total += math.log(s_r - rank / d * s_d)
    return total / event.sum()


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_matches_direct_formula_with_heavy_ties(ties):
    rng = np.random.default_rng(3)
    n = 60
    time = rng.integers(1, 8, n).astype(float)  # ~8 distinct times: many ties
    event = rng.random(n) < 0.6
    risk = rng.normal(size=n) * 2
    got = cox_loss(torch.tensor(risk), time, event, ties=ties).item()
    assert got == pytest.approx(_direct_nll(risk, time, event, ties), abs=1e-12)


def test_breslow_and_efron_differ_with_ties_and_agree_without():
    rng = np.random.default_rng(0)
    risk = torch.tensor(rng.normal(size=30))
    tied = np.repeat([1.0, 2.0, 3.0], 10)
    event = np.ones(30, dtype=bool)
    assert cox_loss(risk, tied, event, "breslow").item() != pytest.approx(cox_loss(risk, tied, event, "efron").item())
    distinct = rng.permutation(30).astype(float) + 1
    assert cox_loss(risk, distinct, event, "breslow").item() == pytest.approx(
        cox_loss(risk, distinct, event, "efron").item(), abs=1e-12)


def test_mean_over_events_and_permutation_invariance():
    rng = np.random.default_rng(1)
    risk = torch.tensor(rng.normal(size=40))
    time = torch.tensor(rng.integers(1, 15, 40).astype(float))
    event = torch.tensor(rng.random(40) < 0.5)
    mean = cox_loss(risk, time, event, "efron")
    total = cox_loss(risk, time, event, "efron", reduction="sum")
    assert mean.item() == pytest.approx(total.item() / int(event.sum()), rel=1e-12)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    assert cox_loss(risk[perm], time[perm], event[perm], "efron").item() == pytest.approx(mean.item(), abs=1e-12)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_batch_without_events_is_zero_with_zero_gradient(ties):
    risk = torch.randn(8, requires_grad=True)
    loss = cox_loss(risk, torch.arange(1.0, 9.0), torch.zeros(8, dtype=torch.bool), ties=ties)
    loss.backward()
    assert loss.item() == 0.0
    assert risk.grad is not None and torch.equal(risk.grad, torch.zeros(8))


def test_single_event_and_extreme_risks_stay_finite():
    risk = torch.tensor([500.0, -500.0, 0.0, 80.0], dtype=torch.float32, requires_grad=True)
    loss = cox_loss(risk, [1.0, 1.0, 2.0, 3.0], [1, 1, 0, 1], ties="efron")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(risk.grad).all()


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    risk = torch.tensor(rng.normal(size=12), requires_grad=True)
    time = rng.integers(1, 4, 12).astype(float)
    event = rng.random(12) < 0.7
    assert torch.autograd.gradcheck(lambda r: cox_loss(r, time, event, "efron"), (risk,))


def test_mismatched_lengths_raise_data_error():
    with pytest.raises(DataError, match="mismatched batch lengths"):
        cox_loss(torch.zeros(3), [1.0, 2.0], [1, 0, 1])
