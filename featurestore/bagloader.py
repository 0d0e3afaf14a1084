"""An in-process MIL bag loader that reads the next bags while the current one trains.

Why not a DataLoader with workers: a bag is 5-50 MB, and every one a worker reads is copied
again through shared memory to the training process; workers must also start with ``spawn``
(Lance is not fork-safe), which costs seconds per epoch unless kept alive. Store reads release
the GIL (they run in Lance's threads on the store's reader loop), so keeping ``prefetch`` reads
in flight in this process overlaps reading and decoding with training, at no IPC cost.

    data = BagDataset(store, "uni", patient_ids=train_ids)
    loader = BagLoader(data, RankSharder(data, seed=0), prefetch=2)   # DDP-safe order
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for item in loader:          # item["features"]: (n_tiles, dim)
            ...
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Iterable, Iterator, Sized

from .datasets import BagDataset, collate_bags


class BagLoader:
    """Items of a `BagDataset` in ``sampler`` order (default: index order), with the next
    ``prefetch`` bags being read while an item is handed out (0: read one bag at a time).

    With ``batch_size``, lists of that many items go through ``collate`` (default
    `collate_bags`: padded bags and a mask); without, items come one by one, as
    ``DataLoader(batch_size=None)`` gives them. Reads in flight hold their bags in memory:
    ``prefetch`` x the largest bag (e.g. 2 x 50 MB).
    """

    def __init__(self, dataset: BagDataset, sampler: Iterable[int] | None = None, *,
                 prefetch: int = 2, batch_size: int | None = None,
                 collate: Callable[[list[dict[str, Any]]], Any] = collate_bags):
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.sampler = sampler
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.collate = collate

    def set_epoch(self, epoch: int) -> None:
        """New epoch: a new order from the sampler and new bag subsets from the dataset."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)  # type: ignore[union-attr]
        self.dataset.set_epoch(epoch)

    def _indices(self) -> Iterable[int]:
        return range(len(self.dataset)) if self.sampler is None else self.sampler

    def __len__(self) -> int:
        n = len(self.sampler) if isinstance(self.sampler, Sized) else len(self.dataset)
        return n if self.batch_size is None else -(-n // self.batch_size)

    def _items(self) -> Iterator[dict[str, Any]]:
        """While item k is waited on and handed out, items k+1 .. k+prefetch are being read."""
        pending: deque[tuple[int, Future]] = deque()
        indices = iter(self._indices())

        def top_up(size: int) -> None:
            while len(pending) < size:
                index = next(indices, None)
                if index is None:
                    return
                pending.append((index, self.dataset.read_ahead(index)))

        top_up(1 + self.prefetch)
        while pending:
            index, future = pending.popleft()
            top_up(self.prefetch)
            yield self.dataset.item(index, self.dataset.finish_bag(index, future.result()))
            top_up(1)  # with prefetch 0 the next read starts only now

    def __iter__(self) -> Iterator[Any]:
        if self.batch_size is None:
            yield from self._items()
            return
        batch: list[dict[str, Any]] = []
        for item in self._items():
            batch.append(item)
            if len(batch) == self.batch_size:
                yield self.collate(batch)
                batch = []
        if batch:
            yield self.collate(batch)
