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


def plan_steps(
    order: Any, sizes: Any, batch_size: int, by_size: bool = False, rng: np.random.Generator | None = None
) -> list[list[list[int]]]:
    """An epoch's optimizer steps: each step a list of groups of patients with equal bag sizes.

    ``order`` holds the epoch's draws (indices into ``sizes``, the training bags' tile counts
    after ``max_train_tiles``). A group is forwarded as one stacked batch (the model treats
    every bag of a batch independently and the losses are batch means), so a step's gradient
    is the mean over its patients whichever way they are grouped.

    * ``by_size=False`` (gradient accumulation as in the paper): consecutive draws form steps
      of ``batch_size`` patients; within a step, equal-size bags share one forward pass.
    * ``by_size=True``: draws are bucketed by bag size across the epoch, a step is up to
      ``batch_size`` bags of one size, and the steps are shuffled. Which patients share a step
      changes, not which patients are drawn; on bags of a few tiles each this turns ~100
      batch-1 forwards per epoch into ~15 batched ones.
    """
    order = [int(i) for i in np.asarray(order).ravel()]
    sizes = np.asarray(sizes).ravel()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    steps: list[list[list[int]]] = []
    if not by_size:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            groups: dict[int, list[int]] = {}
            for i in chunk:
                groups.setdefault(int(sizes[i]), []).append(i)
            steps.append(list(groups.values()))
        return steps
    buckets: dict[int, list[int]] = {}
    for i in order:
        bucket = buckets.setdefault(int(sizes[i]), [])
        bucket.append(i)
        if len(bucket) == batch_size:
            steps.append([list(bucket)])
            bucket.clear()
    steps.extend([list(b)] for b in buckets.values() if b)
    if rng is not None:
        steps = [steps[k] for k in rng.permutation(len(steps))]
    return steps
