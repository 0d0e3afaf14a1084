"""CUDA-only checks (marked gpu; excluded by default): bf16 autocast and GPU resume state."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_tasks import CoxTask, RegressionTask, regression_data, survival_data  # noqa: E402

from pmx.training import Trainer  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


class DtypeProbe(RegressionTask):
    seen: list[torch.dtype] = []

    def losses(self, batch):
        DtypeProbe.seen.append(self.net(batch["x"]).dtype)
        return super().losses(batch)


def test_auto_precision_is_bf16_autocast_on_cuda(tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = DtypeProbe(dropout=0.0)
    data = regression_data(n=64)
    result = Trainer(task, dict(epochs=5, batch_size=16, lr=0.02, progress=False), run_dir=tmp_path,
                     device="cuda").fit(data.subset(range(48)), data.subset(range(48, 64)))
    assert set(DtypeProbe.seen) == {torch.bfloat16}
    assert next(task.parameters()).dtype == torch.float32  # master weights stay fp32
    history = result.history
    assert history[-1]["train_mse"] < history[0]["train_mse"]


def test_group_objective_under_bf16_on_cuda(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = survival_data(n=64)
    result = Trainer(CoxTask(dropout=0.1), dict(epochs=4, batch_size=2, accumulation_steps=8, lr=0.05,
                                                monitor="val_cindex", progress=False),
                     run_dir=tmp_path, device="cuda").fit(data.subset(range(48)), data.subset(range(48, 64)))
    assert result.best_metric is not None and 0.0 <= result.best_metric <= 1.0
    assert result.history[-1]["train_cox"] < result.history[0]["train_cox"] + 0.5
