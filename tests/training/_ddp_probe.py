"""`pmx run plugin:training-ddp-probe --gpus 2 --device cpu` for the DDP test.

Registers a tiny method whose run() trains a per-batch task (DDP path) and a group Cox task
(gathered features path) with the real Trainer, then writes every rank's parameters.
Run as a script so that torchrun re-runs this file (and so registers the method) per worker.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pmx  # noqa: E402
from pmx.cli.main import cli  # noqa: E402
from pmx.training import Trainer, save_weights  # noqa: E402

from _train_tasks import CoxTask, RegressionTask, regression_data, survival_data  # noqa: E402

WORLD_BATCH = 8


def regression_setup(world: int):
    torch.manual_seed(0)
    task = RegressionTask(dropout=0.0)
    data = regression_data(n=40, seed=1)
    config = dict(epochs=2, batch_size=WORLD_BATCH // world, lr=0.05, optimizer="adamw",
                  weight_decay=0.01, warmup_steps=1, grad_clip=1.0, progress=False, seed=3)
    return task, data.subset(range(32)), data.subset(range(32, 40)), config


def cox_setup(world: int):
    torch.manual_seed(0)
    task = CoxTask(dropout=0.0)
    data = survival_data(n=47, seed=2)
    config = dict(epochs=2, batch_size=1, accumulation_steps=WORLD_BATCH // world, lr=0.05,
                  optimizer="sgd", progress=False, seed=5, monitor="val_cindex")
    return task, data.subset(range(32)), data.subset(range(32, 47)), config


SETUPS = {"regression": regression_setup, "cox": cox_setup}


class DdpProbe(pmx.Method):
    """Trains the two test tasks under whatever process group torchrun made."""

    name = "training-ddp-probe"
    distributed = True  # trains under torchrun (pmx run --gpus N)
    version = "1"

    def run(self, context: pmx.RunContext) -> None:
        world = int(os.environ.get("WORLD_SIZE", 1))
        rank = int(os.environ.get("RANK", 0))
        for name, setup in SETUPS.items():
            task, train, val, config = setup(world)
            trainer = Trainer(task, config, run_dir=context.out_dir / name, device=context.device)
            trainer.fit(train, val)
            save_weights(task, context.out_dir / name / f"params-rank{rank}.safetensors")
        (context.out_dir / f"env-rank{rank}.json").write_text(json.dumps({
            "rank": rank, "world": world, "backend": torch.distributed.get_backend(),
        }))


@pmx.hookimpl
def pmx_register_methods(register):
    register(DdpProbe)


if __name__ == "__main__":
    # Only this probe's method is needed: skip loading the built-in and installed plugins
    # (they import pandas, scikit-learn, OpenSlide...) to keep the three processes cheap.
    import pmx.plugins

    pmx.plugins._HOST = pmx.plugins.load_host(builtins=[], allow=set())
    pmx.get_host().register(sys.modules[__name__], "training-ddp-probe")
    cli()
