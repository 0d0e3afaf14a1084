"""Sampling helpers of the CMTA recipe: tile subsampling and (bin, censorship)-balanced weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def subsample_tiles(
    bag: torch.Tensor, k: int, dim: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Keep ``k`` random tiles of a bag along ``dim`` (all of them when the bag is smaller).

    The kept tiles stay in their original order so PPEG's row-major grid keeps neighbouring
    tiles close. Used in training only: bags of tens of thousands of tiles then fit a fixed
    memory budget, while evaluation still sees the full bag.
    """
    n = bag.shape[dim]
    if k <= 0 or n <= k:
        return bag
    keep = torch.randperm(n, generator=generator, device="cpu")[:k].sort().values
    return bag.index_select(dim, keep.to(bag.device))


def balanced_sample_weights(bins: Any, event: Any) -> np.ndarray:
    """Per-patient sampling weights equalising the (time bin, censorship) classes.

    Weight of a patient = N / size of its class, as in the MCAT/CMTA data loaders, so a
    ``torch.utils.data.WeightedRandomSampler(weights, N)`` draws every class equally often.
    Bins must come from time bins fit on the training fold.
    """
    b = np.asarray(bins, dtype=np.int64).ravel()
    e = np.asarray(event).astype(bool).ravel()
    if b.shape != e.shape:
        raise ValueError(f"bins and event differ in length: {b.shape[0]} vs {e.shape[0]}")
    if b.size == 0:
        return np.zeros(0, dtype=np.float64)
    classes = b * 2 + (~e).astype(np.int64)
    _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    return b.size / counts[inverse].astype(np.float64)


def balanced_sampler(
    bins: Any, event: Any, generator: torch.Generator | None = None
) -> torch.utils.data.WeightedRandomSampler:
    """A with-replacement sampler of one epoch (N draws) over balanced (bin, censorship) classes."""
    weights = balanced_sample_weights(bins, event)
    return torch.utils.data.WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double), num_samples=len(weights), replacement=True,
        generator=generator,
    )
