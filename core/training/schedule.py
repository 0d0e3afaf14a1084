"""Per-optimizer-step learning-rate schedule: linear warm-up, then half-cycle cosine.

The schedule is a pure function of the step, so its checkpoint state is one integer and a
resumed run gets exactly the learning rates it would have had. Each parameter group keeps an
``lr_scale`` (layer-wise decay) that multiplies the scheduled rate.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def lr_at(step: int, *, base_lr: float, total_steps: int, warmup_steps: int = 0,
          min_lr: float = 0.0, schedule: str = "cosine") -> float:
    """Learning rate for optimizer step ``step`` (0-based: the rate used by the step itself)."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineSchedule:
    """Sets every group's lr to ``lr_at(step) * group['lr_scale']`` before each optimizer step."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, base_lr: float, total_steps: int,
                 warmup_steps: int = 0, min_lr: float = 0.0, schedule: str = "cosine"):
        self.optimizer = optimizer
        self.base_lr = base_lr
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.min_lr = min_lr
        self.schedule = schedule
        self.step_count = 0
        self.apply()

    def current_lr(self) -> float:
        return lr_at(self.step_count, base_lr=self.base_lr, total_steps=self.total_steps,
                     warmup_steps=self.warmup_steps, min_lr=self.min_lr, schedule=self.schedule)

    def apply(self) -> float:
        """Write the rate of the upcoming step into the optimizer's groups."""
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def step(self) -> None:
        """Call after ``optimizer.step()``: advance and set the next step's rate."""
        self.step_count += 1
        self.apply()

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "min_lr": self.min_lr,
            "schedule": self.schedule,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.apply()
