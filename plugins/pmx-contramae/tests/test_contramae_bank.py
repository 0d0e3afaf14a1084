"""The device-resident data path: RegionBank gathers, BankLoader orders and shards like the trainer's loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pmx.errors import DataError
from pmx.training.data import prepare_epoch
from pmx_contramae.bank import BankLoader, RegionBank
from pmx_contramae.data import decode_regions, pick_regions


def _bank(n: int = 10) -> RegionBank:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    return RegionBank(time=torch.arange(n, dtype=torch.float64) + 1, event=torch.arange(n) % 2,
                      images=images, omics=torch.arange(n, dtype=torch.float32).view(n, 1, 1).expand(n, 3, 2))


def _ids(batch) -> list[int]:
    return [int(v) for v in batch["image"][:, 0, 0, 0]]


def test_batches_gather_the_same_patient_in_every_tensor():
    bank = _bank()
    batch = bank.batch(torch.tensor([7, 2, 5]))
    assert _ids(batch) == [7, 2, 5]
    assert batch["omics"][:, 0, 0].tolist() == [7.0, 2.0, 5.0]
    assert batch["time"].tolist() == [8.0, 3.0, 6.0] and batch["event"].tolist() == [1, 0, 1]
    assert batch["image"].dtype == torch.uint8  # augmentation happens in the model, on the device


def test_eval_loader_visits_each_row_once_in_order():
    loader = BankLoader(_bank(), [9, 3, 4, 0, 6], batch_size=2, train=False)
    assert len(loader) == 3
    assert [i for b in loader for i in _ids(b)] == [9, 3, 4, 0, 6]


def test_train_loader_reshuffles_per_epoch_reproducibly_and_drops_a_single_sample_tail():
    rows = list(range(9))  # 9 = 4 + 4 + 1: the lone last patient is dropped (no Cox / PGC pair)
    loader = BankLoader(_bank(), rows, batch_size=4, train=True, seed=3)
    assert len(loader) == 2
    epoch0 = [_ids(b) for b in prepare_epoch(loader, 0, seed=3)]
    epoch1 = [_ids(b) for b in prepare_epoch(loader, 1, seed=3)]
    again0 = [_ids(b) for b in prepare_epoch(BankLoader(_bank(), rows, batch_size=4, train=True, seed=3), 0, seed=3)]
    assert epoch0 == again0 and epoch0 != epoch1
    assert all(len(b) == 4 for b in epoch0) and len(set(sum(epoch0, []))) == 8
    # resuming mid-epoch (the trainer moves the sampler) yields the remaining batches
    assert [_ids(b) for b in prepare_epoch(loader, 0, seed=3, start_batch=1)] == epoch0[1:]
    # a tail of two or more patients is kept
    assert len(BankLoader(_bank(), list(range(10)), batch_size=4, train=True)) == 3


def test_ranks_get_disjoint_interleaved_shards_of_equal_length():
    rows = list(range(10))
    shards = [BankLoader(_bank(), rows, batch_size=5, train=True, seed=0, rank=r, world_size=2) for r in range(2)]
    seen = [[i for b in prepare_epoch(s, 0, seed=0) for i in _ids(b)] for s in shards]
    assert len(seen[0]) == len(seen[1]) == 5 and sorted(seen[0] + seen[1]) == rows


def test_decode_regions_checks_the_stored_size():
    import io

    from PIL import Image

    def png(size: int, value: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()

    out = decode_regions([png(8, 10), png(8, 200)], 8)
    assert out.shape == (2, 3, 8, 8) and out.dtype == torch.uint8 and int(out[1, 0, 0, 0]) == 200
    with pytest.raises(DataError, match="slide s2.*re-tile"):
        decode_regions([png(8, 10), png(6, 10)], 8, names=["s1", "s2"])


def test_one_region_per_patient_is_the_darkest_then_the_first_slide_id():
    values = [200, 90, 90, 120, 250]  # patient A: slides a1 (light), a2, a3 (both darkest); B: b1; C: c1
    images = torch.tensor(values, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 3, 2, 2)
    frame = pd.DataFrame({"patient_id": ["A", "A", "A", "B", "C"], "slide_id": ["a1", "a3", "a2", "b1", "c1"]})
    patients, rows = pick_regions(frame, images)
    assert patients == ["A", "B", "C"]
    assert frame["slide_id"][rows].tolist() == ["a2", "b1", "c1"]
