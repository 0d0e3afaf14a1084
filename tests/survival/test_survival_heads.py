"""Survival heads: registration, interface, bounded variants, state and learning planted signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pmx
from pmx.survival import (
    CosineCoxHead,
    CoxHead,
    DiscreteTimeHead,
    LogisticHazardHead,
    antolini_c,
    harrell_c,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: thread hand-offs cost more than the maths on a shared CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def planted():
    """Exponential survival with hazard exp(x @ w), random censoring; oracle C known."""
    rng = np.random.default_rng(0)
    n, d = 600, 8
    x = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[:3] = [1.0, -0.8, 0.6]
    log_hazard = x @ w
    event_time = rng.exponential(1.0 / np.exp(log_hazard)) * 365 + 1
    censor_time = rng.uniform(100, 1500, n)
    time = np.minimum(event_time, censor_time)
    event = event_time <= censor_time
    train, test = slice(0, 400), slice(400, None)
    oracle = harrell_c(time[test], event[test], log_hazard[test])
    return {
        "x": torch.tensor(x, dtype=torch.float32), "time": time, "event": event,
        "train": train, "test": test, "oracle": oracle,
    }


def _train(head, data, steps=150, lr=0.05, forward=None):
    forward = forward or (lambda x: head(x))
    params = list(head.parameters()) + list(getattr(forward, "extra", []))
    optimiser = torch.optim.Adam(params, lr=lr)
    x = data["x"][data["train"]]
    time, event = data["time"][data["train"]], data["event"][data["train"]]
    head.train()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = head.loss(forward(x), time, event)
        loss.backward()
        optimiser.step()
    head.eval()
    with torch.no_grad():
        return forward(data["x"][data["test"]])


def test_heads_are_registered_builtin_components():
    registry = pmx.get_registry()
    assert registry.get("head", "cox") is CoxHead
    assert registry.get("head", "cox-cosine") is CosineCoxHead
    assert registry.get("head", "discrete-time") is DiscreteTimeHead
    assert registry.get("head", "logistic-hazard") is LogisticHazardHead
    head = registry.create("head", "cox", in_dim=8, ties="efron")
    assert isinstance(head, torch.nn.Module) and head.config.ties == "efron"
    assert head.fingerprint != registry.create("head", "cox", in_dim=8).fingerprint
    with pytest.raises(pmx.ConfigError, match="n_bins"):
        registry.create("head", "discrete-time", n_bins=0)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_linear_cox_head_learns_planted_signal(planted, ties):
    torch.manual_seed(0)
    head = CoxHead(in_dim=8, ties=ties)
    risk = head.risk(_train(head, planted))
    c = harrell_c(planted["time"][planted["test"]], planted["event"][planted["test"]], risk.numpy())
    assert c > 0.5 + 0.6 * (planted["oracle"] - 0.5), (c, planted["oracle"])


def test_sigmoid_bounded_cox_head_stays_in_range_and_learns(planted):
    torch.manual_seed(0)
    head = CoxHead(in_dim=8, bound="sigmoid", bound_low=-4.0, bound_high=4.0)  # HC-MAE's code
    out = _train(head, planted, steps=200, lr=0.05)
    assert out.min() > -4.0 and out.max() < 4.0
    c = harrell_c(planted["time"][planted["test"]], planted["event"][planted["test"]], out.numpy())
    assert c > 0.5 + 0.6 * (planted["oracle"] - 0.5)


def test_cosine_head_risk_is_cosine_and_code_variant_adds_sigmoid():
    head = CosineCoxHead()
    a, b = torch.randn(5, 16), torch.randn(5, 16)
    torch.testing.assert_close(head(a, b), torch.nn.functional.cosine_similarity(a, b, dim=-1))
    torch.testing.assert_close(head(a, a), torch.ones(5))
    variant = CosineCoxHead(add_fused_sigmoid=True, fused_dim=16)
    fused = torch.randn(5, 16)
    expected = torch.nn.functional.cosine_similarity(a, b, dim=-1) + torch.sigmoid(variant.fused(fused).squeeze(-1))
    torch.testing.assert_close(variant(a, b, fused), expected)
    with pytest.raises(ValueError, match="fused"):
        variant(a, b)


def test_cosine_head_learns_through_two_projections(planted):
    torch.manual_seed(0)
    head = CosineCoxHead(scale=3.0)
    proj_a, proj_b = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)

    def forward(x):
        return head(proj_a(x), proj_b(x))

    forward.extra = list(proj_a.parameters()) + list(proj_b.parameters())
    risk = _train(head, planted, steps=200, lr=0.02, forward=forward)
    c = harrell_c(planted["time"][planted["test"]], planted["event"][planted["test"]], risk.numpy())
    assert c > 0.5 + 0.5 * (planted["oracle"] - 0.5)


@pytest.mark.parametrize("cls, options", [(DiscreteTimeHead, {"n_bins": 4}), (LogisticHazardHead, {"n_intervals": 20})])
def test_discrete_heads_fit_bins_on_training_fold_and_learn(planted, cls, options):
    torch.manual_seed(0)
    head = cls(in_dim=8, **options)
    x = planted["x"][:4]
    with pytest.raises(RuntimeError, match="fit_time_bins"):
        head.loss(head(x), planted["time"][:4], planted["event"][:4])
    train_time, train_event = planted["time"][planted["train"]], planted["event"][planted["train"]]
    head.fit_time_bins(train_time, train_event)
    output = _train(head, planted, steps=200, lr=0.05)
    test_time, test_event = planted["time"][planted["test"]], planted["event"][planted["test"]]
    c = harrell_c(test_time, test_event, head.risk(output).numpy())
    assert c > 0.5 + 0.6 * (planted["oracle"] - 0.5), (c, planted["oracle"])
    surv, grid = head.survival(output)
    assert surv.shape == (len(test_time), len(grid))
    assert torch.all(surv[:, 1:] <= surv[:, :-1] + 1e-7)  # curves never increase
    assert antolini_c(test_time, test_event, surv.numpy(), grid) > 0.6
    # the fitted bins are buffers: saved with the weights and restored into a fresh head
    fresh = cls(in_dim=8, **options)
    fresh.load_state_dict(head.state_dict())
    torch.testing.assert_close(fresh.survival(output)[0], surv)


def test_discrete_time_head_bins_come_from_uncensored_training_times(planted):
    head = DiscreteTimeHead(in_dim=8, n_bins=4)
    train_time, train_event = planted["time"][planted["train"]], planted["event"][planted["train"]]
    head.fit_time_bins(train_time, train_event)
    expected = np.quantile(train_time[train_event], [0.25, 0.5, 0.75])
    np.testing.assert_allclose(head.inner_edges.numpy(), expected)
