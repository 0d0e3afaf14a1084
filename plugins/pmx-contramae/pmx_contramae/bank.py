"""The fast data path: regions and omics resident on the run device, batches gathered there.

ContraMAE sees one region per patient, so a whole cohort's regions fit in device memory as one
uint8 tensor ``[N, 3, R, R]`` (1,000 patients at 1024 px = 3 GiB). A training batch is then an
index gather on the device, and the model's :class:`~pmx_contramae.augment.RegionAugment` crops,
flips and normalises it there: no DataLoader workers, no host-to-device copy per step, no cached
augmented views. :class:`BankLoader` is what the :class:`pmx.training.Trainer` iterates: it uses
the trainer's own :class:`~pmx.training.data.ShardedSampler`, so the order is a function of
(seed, epoch), DDP ranks get interleaved shards and a resumed run reads the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from pmx.training.data import ShardedSampler

__all__ = ["BankLoader", "RegionBank", "Unsized"]


@dataclass
class RegionBank:
    """Per-patient tensors of one cohort, row ``i`` = patient ``i``, all on one device.

    ``images`` uint8 ``[N, 3, R, R]`` or None (``modalities=omics``); ``omics`` float
    ``[N, n_omics, top_k]`` or None (``modalities=pathology``; it changes per fold, the selection
    being fit per fold); ``time`` float64 and ``event`` int64 ``[N]``.
    """

    time: torch.Tensor
    event: torch.Tensor
    images: torch.Tensor | None = None
    omics: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @property
    def device(self) -> torch.device:
        return self.time.device

    def to(self, device: torch.device | str) -> "RegionBank":
        move = (lambda t: None if t is None else t.to(device))
        return RegionBank(time=move(self.time), event=move(self.event), images=move(self.images),
                          omics=move(self.omics))

    def with_omics(self, omics: torch.Tensor | None) -> "RegionBank":
        """The same bank with one fold's selected omics vectors (moved to the bank's device)."""
        return RegionBank(time=self.time, event=self.event, images=self.images,
                          omics=None if omics is None else omics.to(self.device, torch.float32))

    def batch(self, rows: torch.Tensor, survival: bool = True) -> dict[str, torch.Tensor]:
        """The batch of ``rows`` (a long tensor on the bank's device), gathered on the device;
        ``index`` = the rows, so outputs gathered over processes map back to patients."""
        out: dict[str, torch.Tensor] = {"index": rows}
        if self.images is not None:
            out["image"] = self.images.index_select(0, rows)
        if self.omics is not None:
            out["omics"] = self.omics.index_select(0, rows)
        if survival:
            out["time"] = self.time.index_select(0, rows)
            out["event"] = self.event.index_select(0, rows)
        return out

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.images, self.omics, self.time, self.event)
                   if t is not None)


class BankLoader:
    """Batches of a subset of a :class:`RegionBank` (e.g. one fold's training patients).

    ``train=True``: a seeded permutation per epoch, padded by wrapping so every DDP rank runs the
    same number of batches, and a last batch of a single patient is dropped (a Cox or
    contrastive loss over one sample has no pair: it would be a wasted step); ``train=False``:
    every patient once, in order. Rank and world size default to ``torch.distributed``'s when it
    is initialised.
    """

    def __init__(self, bank: RegionBank, rows: Sequence[int], *, batch_size: int, train: bool, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None):
        if len(rows) == 0:
            raise ValueError("BankLoader needs at least one patient")
        if rank is None or world_size is None:
            dist = torch.distributed.is_available() and torch.distributed.is_initialized()
            rank = torch.distributed.get_rank() if dist else 0
            world_size = torch.distributed.get_world_size() if dist else 1
        self.bank = bank
        self.rows = torch.as_tensor(list(rows), dtype=torch.long, device=bank.device)
        self.batch_size = int(batch_size)
        self.train = train
        self.sampler = ShardedSampler(len(rows), rank=rank, world_size=world_size, shuffle=train, seed=seed,
                                      pad=train)

    def __len__(self) -> int:
        """Batches left in this epoch (all of them unless a resume moved the sampler's start)."""
        n = len(self.sampler) + self.sampler.start
        total = n // self.batch_size if (self.train and n > self.batch_size and n % self.batch_size == 1) \
            else math.ceil(n / self.batch_size)
        return total - self.sampler.start // self.batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        order = torch.as_tensor(list(iter(self.sampler)), dtype=torch.long, device=self.bank.device)
        positions = self.rows.index_select(0, order) if order.numel() else order
        for batch in range(len(self)):
            chunk = positions[batch * self.batch_size:(batch + 1) * self.batch_size]
            if chunk.numel() == 0:
                return
            yield self.bank.batch(chunk)


class Unsized:
    """A loader without ``len()``: the trainer's "every process needs one validation sample"
    check counts the items of a Dataset, and a loader's length is its batches; the caller
    checks the patient count against the world size instead (``crossval``)."""

    def __init__(self, loader: BankLoader):
        self.loader = loader

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.loader)
