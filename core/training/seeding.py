"""Deterministic seeding and RNG state that a checkpoint can store without pickle.

Resuming must continue the exact random streams (dropout, masking, augmentation), so the
states of Python's, NumPy's and torch's generators are turned into tensors (for safetensors)
plus a small JSON-able dict, and back.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Current generator states as (tensors, JSON-able values)."""
    tensors: dict[str, torch.Tensor] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy.keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    values = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }
    return tensors, values


def restore_rng_state(tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(tensors["torch"].to(torch.uint8))
    cuda_states = sorted(
        (int(k.split(".")[1]), v) for k, v in tensors.items() if k.startswith("cuda.")
    )
    if cuda_states and torch.cuda.is_available():
        count = torch.cuda.device_count()
        for index, state in cuda_states:
            if index < count:
                torch.cuda.set_rng_state(state.to(torch.uint8), index)
    numpy_values = values["numpy"]
    np.random.set_state(
        (
            numpy_values["kind"],
            tensors["numpy.keys"].numpy().astype(np.uint32),
            numpy_values["pos"],
            numpy_values["has_gauss"],
            numpy_values["cached"],
        )
    )
    python_values = values["python"]
    random.setstate(
        (python_values["version"], tuple(python_values["state"]), python_values["gauss_next"])
    )
