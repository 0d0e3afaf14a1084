"""Train a small task with per-step checkpoints; run, kill and re-run by test_training_resume.

Usage: python _resume_script.py RUN_DIR SLEEP_SECONDS_PER_STEP
Prints one JSON line {"start_step": ..., "end_step": ...} when it finishes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pmx.training import Callback, Trainer  # noqa: E402

from _train_tasks import CoxTask, RegressionTask, regression_data, survival_data  # noqa: E402

CONFIG = dict(epochs=4, batch_size=4, accumulation_steps=2, optimizer="adamw", lr=0.02,
              weight_decay=0.01, warmup_steps=2, grad_clip=1.0, checkpoint_every_steps=1,
              progress=False, seed=11)


class Slow(Callback):
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start_step = None

    def on_fit_start(self, trainer):
        self.start_step = trainer.state.global_step

    def on_step_end(self, trainer, losses):
        time.sleep(self.seconds)


def main(run_dir: str, seconds: float, kind: str = "regression") -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if kind == "regression":
        task, data = RegressionTask(dropout=0.3), regression_data(n=40, seed=4)
        config = CONFIG
    else:
        task, data = CoxTask(dropout=0.3), survival_data(n=40, seed=4)
        config = {**CONFIG, "batch_size": 1, "accumulation_steps": 8, "monitor": "val_cindex"}
    slow = Slow(seconds)
    result = Trainer(task, config, run_dir=run_dir, device="cpu", callbacks=[slow]).fit(
        data.subset(range(32)), data.subset(range(32, 40)))
    print(json.dumps({"start_step": slow.start_step, "end_step": result.global_step}))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), *(sys.argv[3:4]))
