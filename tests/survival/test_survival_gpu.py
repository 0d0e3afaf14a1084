"""Losses and heads give the same numbers on CUDA as on CPU (excluded by default: -m gpu)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pmx.survival import DiscreteTimeHead, LogisticHazardHead, cox_loss, logistic_hazard_loss, nll_discrete_loss

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_cox_loss_on_cuda_matches_cpu(ties):
    rng = np.random.default_rng(0)
    risk = torch.tensor(rng.normal(size=256))
    time = torch.tensor(rng.integers(1, 40, 256).astype(float))
    event = torch.tensor(rng.random(256) < 0.5)
    cpu = cox_loss(risk, time, event, ties=ties)
    gpu = cox_loss(risk.cuda(), time.cuda(), event.cuda(), ties=ties)
    assert gpu.item() == pytest.approx(cpu.item(), abs=1e-10)


def test_discrete_losses_and_heads_on_cuda_match_cpu():
    rng = np.random.default_rng(1)
    logits = torch.tensor(rng.normal(size=(64, 4)))
    bins = torch.tensor(rng.integers(0, 4, 64))
    event = torch.tensor(rng.random(64) < 0.5)
    assert nll_discrete_loss(logits.cuda(), bins.cuda(), event.cuda()).item() == pytest.approx(
        nll_discrete_loss(logits, bins, event).item(), abs=1e-10)
    phi = torch.tensor(rng.normal(size=(64, 20)))
    index = torch.tensor(rng.integers(0, 20, 64))
    assert logistic_hazard_loss(phi.cuda(), index.cuda(), event.cuda()).item() == pytest.approx(
        logistic_hazard_loss(phi, index, event).item(), abs=1e-10)
    time = rng.exponential(300, 64) + 1
    x = torch.randn(64, 8)
    for cls in (DiscreteTimeHead, LogisticHazardHead):
        torch.manual_seed(0)
        head = cls(in_dim=8).fit_time_bins(time, event.numpy())
        cpu = head.loss(head(x), time, event).item()
        head = head.cuda()
        gpu = head.loss(head(x.cuda()), torch.tensor(time, device="cuda"), event.cuda()).item()
        assert gpu == pytest.approx(cpu, abs=1e-5)
