"""Discrete-time NLL (MCAT form), logistic hazard (pycox form) and their fold-only time bins."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from pmx.errors import DataError
from pmx.survival import HazardCuts, QuantileBins, logistic_hazard_loss, nll_discrete_loss


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _mcat_reference(logits, bins, events, alpha, eps=1e-7):
    """The MCAT / Zadeh & Schmid expression, written out per patient with explicit products."""
    total = 0.0
    for z, y, e in zip(logits, bins, events):
        h = [_sigmoid(v) for v in z]
        s_before = math.prod(1 - h[j] for j in range(y))  # S_{y-1}, S_{-1} = 1
        s_at = s_before * (1 - h[y])
        uncensored = -e * (math.log(max(s_before, eps)) + math.log(max(h[y], eps)))
        censored = -(1 - e) * math.log(max(s_at, eps))
        total += (1 - alpha) * (censored + uncensored) + alpha * uncensored
    return total / len(bins)


@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_nll_discrete_matches_mcat_expression(alpha):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(25, 4)) * 2
    bins = rng.integers(0, 4, 25)
    events = (rng.random(25) < 0.5).astype(float)
    got = nll_discrete_loss(torch.tensor(logits), bins, events, alpha=alpha).item()
    assert got == pytest.approx(_mcat_reference(logits, bins, events, alpha), abs=1e-12)


def test_nll_discrete_clamp_and_gradients_finite():
    logits = torch.tensor([[40.0, 40.0, 40.0, 40.0], [-40.0, -40.0, -40.0, -40.0]], requires_grad=True)
    loss = nll_discrete_loss(logits, [3, 0], [0, 1])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert loss.item() == pytest.approx(-math.log(1e-7), rel=1e-6)  # both terms hit the MCAT clamp
    unclamped = nll_discrete_loss(logits.detach(), [3, 0], [0, 1], eps=None)
    assert unclamped.item() > loss.item()


def test_nll_discrete_rejects_bad_bins():
    with pytest.raises(DataError, match=r"bin indices must be in \[0, 3\]"):
        nll_discrete_loss(torch.zeros(2, 4), [0, 4], [1, 0])


def _logistic_hazard_reference(phi, index, events):
    total = 0.0
    for z, k, e in zip(phi, index, events):
        h = [_sigmoid(v) for v in z]
        log_lik = sum(math.log(1 - h[j]) for j in range(k))
        log_lik += math.log(h[k]) if e else math.log(1 - h[k])
        total -= log_lik
    return total / len(index)


def test_logistic_hazard_matches_likelihood():
    rng = np.random.default_rng(1)
    phi = rng.normal(size=(30, 20))
    index = rng.integers(0, 20, 30)
    events = rng.random(30) < 0.5
    got = logistic_hazard_loss(torch.tensor(phi), index, events).item()
    assert got == pytest.approx(_logistic_hazard_reference(phi, index, events), abs=1e-10)


# -- bins --------------------------------------------------------------------------------------

def test_quantile_bins_are_mcat_quartiles_of_uncensored_training_times():
    rng = np.random.default_rng(2)
    time = rng.exponential(500, 200) + 1
    event = rng.random(200) < 0.4
    bins = QuantileBins(4).fit(time, event)
    _, reference = pd.qcut(time[event], q=4, retbins=True, labels=False)
    np.testing.assert_allclose(bins.inner_edges_, reference[1:-1], rtol=0, atol=1e-9)
    # censored patients do not move the edges
    shuffled = time.copy()
    shuffled[~event] = rng.exponential(5000, (~event).sum()) + 1
    np.testing.assert_array_equal(QuantileBins(4).fit(shuffled, event).inner_edges_, bins.inner_edges_)
    # bins are [lower, upper) like pd.cut(right=False) with the MCAT edges
    edges = np.concatenate([[time.min() - 1e-6], reference[1:-1], [time.max() + 1e-6]])
    expected = pd.cut(time, bins=edges, labels=False, right=False, include_lowest=True)
    np.testing.assert_array_equal(bins.transform(time), expected)


def test_quantile_bins_use_training_fold_only_and_extend_outer_edges():
    train_time = np.array([10.0, 20, 30, 40, 50, 60, 70, 80])
    train_event = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)
    bins = QuantileBins(4).fit(train_time, train_event)
    np.testing.assert_allclose(bins.inner_edges_, [25.0, 40.0, 55.0])
    # test-fold times outside the training range land in the first / last bin
    assert bins.transform(np.array([0.5, 25.0, 24.9, 10_000.0])).tolist() == [0, 1, 0, 3]
    assert bins.edges_[0] == 0.0 and np.isinf(bins.edges_[-1])
    torch_bins = bins.transform(torch.tensor([0.5, 25.0, 24.9, 10_000.0]))
    assert torch_bins.tolist() == [0, 1, 0, 3]


def test_bins_need_an_event_in_the_training_fold():
    with pytest.raises(DataError, match="no uncensored patient"):
        QuantileBins(4).fit([1.0, 2.0, 3.0], [0, 0, 0])
    with pytest.raises(DataError, match="no uncensored patient"):
        HazardCuts(20).fit([1.0, 2.0, 3.0], [0, 0, 0])


def test_hazard_cuts_equidistant_and_pycox_discretisation():
    cuts = HazardCuts(5).fit([10.0, 20, 40, 35, 5], [1, 0, 1, 1, 0])
    np.testing.assert_allclose(cuts.cuts_, [0, 10, 20, 30, 40])
    time = np.array([10.0, 12.0, 12.0, 40.0, 55.0, 3.0])
    event = np.array([1, 1, 0, 1, 1, 0], dtype=bool)
    index, events = cuts.transform(time, event)
    # event -> first cut >= t; censored -> last cut <= t; beyond the last cut -> censored there
    assert index.tolist() == [1, 2, 1, 4, 4, 0]
    assert events.tolist() == [True, True, False, True, False, False]
    t_index, t_events = cuts.transform(torch.tensor(time), torch.tensor(event))
    assert t_index.tolist() == index.tolist() and t_events.tolist() == events.tolist()


def test_hazard_cuts_quantile_scheme_follows_km():
    rng = np.random.default_rng(4)
    time = rng.exponential(100, 300) + 1
    event = rng.random(300) < 0.7
    cuts = HazardCuts(10, scheme="quantiles").fit(time, event)
    assert cuts.cuts_[0] == 0.0 and cuts.cuts_[-1] == time.max()
    assert np.all(np.diff(cuts.cuts_) >= 0)
    # quantile cuts are denser where events are dense (early), unlike equidistant cuts
    assert np.median(cuts.cuts_) < np.median(np.linspace(0, time.max(), 10))
