"""Splitting a dataset across DDP ranks so every rank runs the same number of batches.

DDP synchronises gradients every step: if one rank has one batch fewer than the others, the
others wait forever in all-reduce. So shards are padded to equal length by wrapping around
(like ``torch.utils.data.DistributedSampler``), and each rank knows which of its indices are
padding so evaluation can count every patient exactly once (`RankSharder.owned`).
"""

from __future__ import annotations

import math
from typing import Iterator, Sized

import numpy as np


def _world() -> tuple[int, int]:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return 0, 1


def shard_indices(n: int, rank: int, world_size: int, *, shuffle: bool = False, seed: int = 0,
                  epoch: int = 0, pad: bool = True) -> tuple[list[int], list[bool]]:
    """Indices for ``rank`` and, per index, whether it is padding (a repeat from another rank).

    With ``pad`` every rank gets ``ceil(n / world_size)`` indices; without, ranks get
    ``floor(n / world_size)`` (the last few items are dropped for this epoch).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    order = np.arange(n)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    per_rank = math.ceil(n / world_size) if pad else n // world_size
    total = per_rank * world_size
    if n == 0:
        return [], []
    if total > n:
        order = np.concatenate([order, np.resize(order, total - n)])
    padding = np.arange(total) >= n
    mine = slice(rank, total, world_size)
    return order[:total][mine].tolist(), padding[mine].tolist()


class RankSharder:
    """A torch ``Sampler`` over this rank's shard (rank and world size default to DDP's)."""

    def __init__(self, data: Sized | int, *, rank: int | None = None,
                 world_size: int | None = None, shuffle: bool = True, seed: int = 0,
                 pad: bool = True):
        default_rank, default_world = _world()
        self.n = data if isinstance(data, int) else len(data)
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.shuffle, self.seed, self.pad = shuffle, seed, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for a new epoch (same permutation on every rank: they share the seed)."""
        self.epoch = epoch

    def _shard(self) -> tuple[list[int], list[bool]]:
        return shard_indices(self.n, self.rank, self.world_size, shuffle=self.shuffle,
                             seed=self.seed, epoch=self.epoch, pad=self.pad)

    def __iter__(self) -> Iterator[int]:
        return iter(self._shard()[0])

    def __len__(self) -> int:
        return math.ceil(self.n / self.world_size) if self.pad else self.n // self.world_size

    def owned(self) -> list[int]:
        """This rank's indices without padding: across ranks these partition ``range(n)``."""
        indices, padding = self._shard()
        return [i for i, p in zip(indices, padding) if not p]


class ShardedBatchSampler:
    """Batches of this rank's shard; every rank yields ``len(self)`` batches."""

    def __init__(self, data: Sized | int, batch_size: int, *, rank: int | None = None,
                 world_size: int | None = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.sharder = RankSharder(data, rank=rank, world_size=world_size, shuffle=shuffle,
                                   seed=seed)
        self.batch_size = batch_size
        self.drop_last = drop_last

    def set_epoch(self, epoch: int) -> None:
        self.sharder.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(self.sharder)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield indices[start:start + self.batch_size]

    def __len__(self) -> int:
        per_rank = len(self.sharder)
        return per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)

    def owned(self) -> list[int]:
        return self.sharder.owned()
