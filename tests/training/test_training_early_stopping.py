"""Early stopping and model selection on the validation split, against a closed form.

ScalarTask pulls its weight w from 0 towards 3 on the training split (plain gradient steps,
w_k = 3 (1 - (1 - 2 lr)^k)) while the validation loss (w - 1)^2 is best where w is closest
to 1. The trainer must pick that epoch, stop ``patience`` validations later, and restore it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_tasks import DictDataset, ScalarTask  # noqa: E402

from pmx.errors import ConfigError  # noqa: E402
from pmx.training import Trainer  # noqa: E402

LR = 0.05
TRAIN = DictDataset(split=torch.zeros(4))
VAL = DictDataset(split=torch.ones(4))
CONFIG = dict(epochs=20, batch_size=4, optimizer="sgd", momentum=0.0, lr=LR, schedule="constant",
              patience=2, progress=False)


def _w_after(epoch: int) -> float:
    return 3.0 * (1 - (1 - 2 * LR) ** (epoch + 1))


def _expected_best() -> int:
    val = [(_w_after(e) - 1.0) ** 2 for e in range(20)]
    return min(range(20), key=val.__getitem__)


class ClosenessTask(ScalarTask):
    """Same trajectory, selected on a 'higher is better' metric from predict()/metrics()."""

    def predict(self, batch):
        return {"w": self.w.expand(batch["split"].shape[0])}

    def metrics(self, outputs):
        return {"closeness": -float((outputs["w"][0] - self.val_target).abs())}


@pytest.mark.parametrize(("task_cls", "monitor"), [(ScalarTask, "val_loss"), (ClosenessTask, "val_closeness")])
def test_stops_and_restores_the_best_validation_epoch(tmp_path: Path, task_cls, monitor: str) -> None:
    task = task_cls()
    result = Trainer(task, {**CONFIG, "monitor": monitor}, run_dir=tmp_path, device="cpu").fit(TRAIN, VAL)
    best = _expected_best()
    assert best == 3  # w = 1.03 after 4 steps
    assert result.best_epoch == best
    assert result.stopped_early and result.epochs_run == best + 1 + CONFIG["patience"]
    assert len(result.history) == result.epochs_run
    for row in result.history:
        assert row["val_loss"] == pytest.approx((_w_after(row["epoch"]) - 1.0) ** 2, rel=1e-5)
    assert float(task.w.detach()) == pytest.approx(_w_after(best), rel=1e-6)  # best weights restored
    assert json.loads((tmp_path / "best" / "best.json").read_text())["epoch"] == best


def test_without_patience_trains_all_epochs_but_still_selects(tmp_path: Path) -> None:
    task = ScalarTask()
    result = Trainer(task, {**CONFIG, "epochs": 8, "patience": 0}, run_dir=tmp_path, device="cpu").fit(TRAIN, VAL)
    assert not result.stopped_early and result.epochs_run == 8
    assert result.best_epoch == 3 and float(task.w.detach()) == pytest.approx(_w_after(3), rel=1e-6)


def test_unknown_monitor_names_the_available_metrics(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="val_loss"):
        Trainer(ScalarTask(), {**CONFIG, "monitor": "val_cindex"}, run_dir=tmp_path, device="cpu").fit(TRAIN, VAL)
