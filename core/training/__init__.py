"""pmx.training: the one engine that pretrains, fine-tunes and evaluates every method.

Methods supply a :class:`TrainTask` (modules + how a batch becomes named losses, or features
for a group loss) and a :class:`TrainConfig`; :class:`Trainer` does the rest. See
docs/training.md.
"""

from __future__ import annotations

from .checkpoint import LoadReport, find_latest, load_pretrained, read_weights, save_weights
from .config import TrainConfig
from .data import ShardedSampler, make_loader, to_device
from .distributed import (
    DistEnv,
    average_gradients,
    gather_variable,
    gather_with_grad,
    init_distributed,
)
from .launch import relaunch_under_torchrun, torchrun_command
from .optim import build_optimizer, param_groups
from .runlog import read_metrics
from .schedule import WarmupCosineSchedule, lr_at
from .seeding import seed_everything
from .task import TrainTask, weighted_total
from .trainer import Callback, FitResult, Trainer

__all__ = [
    "Callback",
    "DistEnv",
    "FitResult",
    "LoadReport",
    "ShardedSampler",
    "TrainConfig",
    "TrainTask",
    "Trainer",
    "WarmupCosineSchedule",
    "average_gradients",
    "build_optimizer",
    "find_latest",
    "gather_variable",
    "gather_with_grad",
    "init_distributed",
    "load_pretrained",
    "lr_at",
    "make_loader",
    "param_groups",
    "read_metrics",
    "read_weights",
    "relaunch_under_torchrun",
    "save_weights",
    "seed_everything",
    "to_device",
    "torchrun_command",
    "weighted_total",
]
