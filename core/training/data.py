"""Rank-sharded, epoch-seeded data loading with equal batch counts on every rank.

Every rank must run the same number of steps or the collectives of DDP deadlock, so the
sampler pads the epoch's permutation (wrapping around) to a multiple of the world size.
Sharding is interleaved - rank r takes positions r, r + W, r + 2W... - so W ranks with batch
b see exactly the global batches of one process with batch W * b, which is what makes a DDP
run comparable to a single-process run. The order depends only on (seed, epoch), and the
sampler can start mid-epoch, so a resumed run reads the same batches it would have read.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sized

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .distributed import DistEnv


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


class ShardedSampler(Sampler[int]):
    """This rank's indices of an epoch: a seeded permutation, padded, interleaved by rank.

    ``pad=False`` (evaluation) gives each sample to exactly one rank; ranks may then hold
    different counts, which is fine without gradients.
    """

    def __init__(self, length: int, *, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 seed: int = 0, pad: bool = True):
        if length <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.length = length
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.seed = seed
        self.pad = pad
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's epoch (mid-epoch resume)."""
        self.start = start

    def epoch_indices(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = list(range(self.length))
        if self.pad:
            total = math.ceil(self.length / self.world_size) * self.world_size
            while len(order) < total:
                order += order[: total - len(order)]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.start :])

    def __len__(self) -> int:
        if self.pad:
            count = math.ceil(self.length / self.world_size)
        else:
            count = len(range(self.rank, self.length, self.world_size))
        return max(0, count - self.start)


def make_loader(dataset: Dataset, *, batch_size: int, env: DistEnv, shuffle: bool, seed: int,
                pad: bool = True, num_workers: int = 0,
                collate_fn: Callable[[list[Any]], Any] | None = None,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader over this rank's shard, with a generator so the global RNG is untouched.

    Workers are spawned, not forked (LanceDB and OpenSlide handles are not fork-safe).
    """
    if not isinstance(dataset, Sized):
        raise TypeError("make_loader needs a map-style dataset with __len__")
    sampler = ShardedSampler(len(dataset), rank=env.rank, world_size=env.world_size,
                             shuffle=shuffle, seed=seed, pad=pad)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        multiprocessing_context="spawn" if num_workers > 0 else None,
        # a dataset with set_epoch (per-epoch tile subsampling) must reach fresh workers
        persistent_workers=num_workers > 0 and not hasattr(dataset, "set_epoch"),
    )


def prepare_epoch(loader: Any, epoch: int, seed: int, start_batch: int = 0) -> Iterator[Any]:
    """Iterator over ``loader`` for ``epoch``, starting at micro-batch ``start_batch``.

    Loaders built by :func:`make_loader` skip by moving the sampler; other iterables are
    consumed up to the start (their order must be a function of the epoch for exact resume).
    """
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    sampler = getattr(loader, "sampler", None)
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(epoch_seed(seed, epoch) + 1)
    if isinstance(sampler, ShardedSampler):
        sampler.set_epoch(epoch)
        sampler.set_start(start_batch * (loader.batch_size or 1))
        return iter(loader)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    iterator = iter(loader)
    for _ in range(start_batch):
        next(iterator)
    return iterator


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors in nested dicts / lists / tuples to ``device``; leave anything else."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    return batch
