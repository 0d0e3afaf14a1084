"""Mixed-precision helper: the few small, precision-sensitive ops run in fp32 under autocast."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["fp32"]


def fp32(device: torch.device) -> contextlib.AbstractContextManager:
    """Switch autocast off on ``device`` (a no-op where autocast does not exist, e.g. meta)."""
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()
