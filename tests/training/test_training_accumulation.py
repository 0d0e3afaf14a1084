"""Accumulation equivalence: batch-1 micro-batches accumulated into a group give the gradient
of the loss computed on the whole group (group objectives), and of the big batch (per-batch
objectives)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_tasks import CoxTask, RegressionTask, regression_data, survival_data  # noqa: E402

from pmx.survival import cox_loss  # noqa: E402
from pmx.training import Trainer, TrainTask  # noqa: E402
from pmx.training.group import group_backward  # noqa: E402


def _grads(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in module.named_parameters()}


def _micro_batches(data, size: int = 1) -> list[dict[str, torch.Tensor]]:
    rows = [data[i] for i in range(len(data))]
    return [{k: torch.stack([r[k] for r in rows[i:i + size]]) for k in rows[0]}
            for i in range(0, len(rows), size)]


@pytest.mark.parametrize("mode", ["cache", "retain"])
def test_accumulated_batch1_cox_equals_group_cox(mode: str) -> None:
    data = survival_data(n=20, seed=3)
    torch.manual_seed(0)
    task = CoxTask()
    full = _micro_batches(data, size=len(data))[0]
    expected_loss = cox_loss(task.risk(full["x"]), full["time"], full["event"])
    expected_loss.backward()
    expected = _grads(task)
    task.zero_grad()

    values = group_backward(task, _micro_batches(data, 1), weights={}, mode=mode, autocast=nullcontext)
    assert values["cox"] == pytest.approx(float(expected_loss.detach()), rel=1e-6)
    for name, grad in _grads(task).items():
        assert torch.allclose(grad, expected[name], atol=1e-6), name
    assert any(g.abs().sum() > 0 for g in expected.values())


def test_per_sample_batch1_cox_is_not_the_group_loss() -> None:
    """Why group objectives exist: averaging batch-1 Cox losses is not the group loss."""
    data = survival_data(n=20, seed=3)
    torch.manual_seed(0)
    task = CoxTask()
    batches = _micro_batches(data, 1)
    per_sample = sum(float(cox_loss(task.risk(b["x"]), b["time"], b["event"]).detach()) for b in batches)
    full = _micro_batches(data, len(data))[0]
    assert per_sample == 0.0  # a single patient is its own risk set
    assert float(cox_loss(task.risk(full["x"]), full["time"], full["event"]).detach()) > 0.1


def test_cache_mode_replays_dropout_and_counts_batchnorm_once() -> None:
    """Two-pass caching must see the same random masks in both passes (and in retain mode)."""

    class NoisyCox(CoxTask):
        def __init__(self):
            super().__init__(dropout=0.5)
            self.norm = nn.BatchNorm1d(6)

        def risk(self, x):
            return self.head(self.backbone(self.norm(x)))[:, 0]

    data = survival_data(n=16, seed=5)
    batches = _micro_batches(data, 4)
    results = {}
    for mode in ("retain", "cache"):
        torch.manual_seed(0)
        task = NoisyCox()
        torch.manual_seed(123)
        values = group_backward(task, batches, weights={}, mode=mode, autocast=nullcontext)
        after = torch.rand(1)  # the RNG stream continues as if the group ran once
        results[mode] = (values, _grads(task), task.norm.running_mean.clone(),
                         int(task.norm.num_batches_tracked), after)
    (v_r, g_r, m_r, n_r, a_r), (v_c, g_c, m_c, n_c, a_c) = results["retain"], results["cache"]
    assert v_c["cox"] == pytest.approx(v_r["cox"], rel=1e-6)
    for name in g_r:
        assert torch.allclose(g_c[name], g_r[name], atol=1e-6), name
    assert torch.allclose(m_c, m_r) and n_c == n_r == len(batches)
    assert torch.equal(a_c, a_r)


def test_trainer_group_accumulation_equals_one_real_batch(tmp_path: Path) -> None:
    """Through the Trainer: batch 1 x 16 accumulated steps == batch 16, for Cox (SGD)."""
    data = survival_data(n=32, seed=6)
    finals = []
    for batch, accum in ((1, 16), (16, 1), (4, 4)):
        torch.manual_seed(0)
        task = CoxTask()
        config = dict(epochs=2, batch_size=batch, accumulation_steps=accum, optimizer="sgd",
                      lr=0.1, momentum=0.9, progress=False, seed=1)
        Trainer(task, config, run_dir=tmp_path / f"{batch}x{accum}", device="cpu").fit(data)
        finals.append({k: v.clone() for k, v in task.state_dict().items()})
    for other in finals[1:]:
        for key in finals[0]:
            assert torch.allclose(finals[0][key], other[key], atol=1e-5), key


def test_trainer_per_batch_accumulation_equals_big_batch(tmp_path: Path) -> None:
    data = regression_data(n=32, seed=2)
    finals = []
    for batch, accum in ((2, 4), (8, 1)):
        torch.manual_seed(0)
        task = RegressionTask(dropout=0.0)
        config = dict(epochs=2, batch_size=batch, accumulation_steps=accum, lr=0.01,
                      weight_decay=0.05, warmup_steps=2, grad_clip=0.5, progress=False)
        Trainer(task, config, run_dir=tmp_path / f"{batch}x{accum}", device="cpu").fit(data)
        finals.append(task.state_dict())
    for key in finals[0]:
        assert torch.allclose(finals[0][key], finals[1][key], atol=1e-6), key


def test_named_losses_are_weighted_and_logged(tmp_path: Path) -> None:
    class TwoTerms(TrainTask):
        loss_weights = {"a": 2.0}

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def losses(self, batch):
            return {"a": (self.w * batch["x"]).pow(2).mean(), "b": self.w.abs().sum()}

    from _train_tasks import DictDataset

    data = DictDataset(x=torch.ones(4, 1))
    config = dict(epochs=1, batch_size=4, lr=1e-9, progress=False, loss_weights={"b": 0.5})
    result = Trainer(TwoTerms(), config, run_dir=tmp_path, device="cpu").fit(data)
    row = result.history[0]
    assert row["train_a"] == pytest.approx(1.0) and row["train_b"] == pytest.approx(1.0)
    assert row["train_loss"] == pytest.approx(2.0 * 1.0 + 0.5 * 1.0)


def test_non_finite_loss_stops_before_the_optimizer_step(tmp_path: Path) -> None:
    class Exploding(TrainTask):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def losses(self, batch):
            return {"log": torch.log(self.w - batch["x"].mean())}  # log(0) = -inf

    from _train_tasks import DictDataset

    task = Exploding()
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        Trainer(task, dict(epochs=1, batch_size=2, progress=False), run_dir=tmp_path,
                device="cpu").fit(DictDataset(x=torch.ones(2, 1)))
    assert torch.equal(task.w.detach(), torch.ones(1))
