"""Deterministic rows shared by the feature-store tests and their writer subprocesses."""

from __future__ import annotations

import numpy as np

ENCODER = "enc-test"
DIM = 16
TILES_PER_SLIDE = 50


def slide_ids(n: int) -> list[str]:
    return [f"S{i:02d}" for i in range(n)]


def patient_of(slide_id: str) -> str:
    return f"P{int(slide_id[1:]) // 2:02d}"


def slide_vectors(slide_id: str, n: int = TILES_PER_SLIDE, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(int(slide_id[1:]))
    return rng.standard_normal((n, dim)).astype(np.float32)


def slide_coords(n: int = TILES_PER_SLIDE) -> np.ndarray:
    return np.stack([np.arange(n) * 256, np.arange(n) % 7 * 256], axis=1)
