"""BagLoader: in-process MIL bags with reads in flight ahead of training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pmx.errors import DataError
from pmx.featurestore import open_store
from pmx.featurestore.bagloader import BagLoader
from pmx.featurestore.datasets import BagDataset
from pmx.featurestore.sharding import RankSharder

DIM = 6


def _bag(patient: int, slide: int) -> np.ndarray:
    n = 4 + 2 * patient + slide
    return np.random.default_rng([patient, slide]).standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def bag_store(tmp_path_factory):
    store = open_store(tmp_path_factory.mktemp("bagloader") / "store")
    store.upsert("patients", [{"patient_id": f"P{p}", "time": 5.0 + p, "event": p % 3 == 0}
                              for p in range(9)])
    for p in range(9):
        for s in range(1 + p % 2):  # odd patients have two slides
            store.write_embeddings("enc", f"P{p}-S{s}", _bag(p, s), patient_id=f"P{p}")
    return store


class CountingBags(BagDataset):
    """A real BagDataset that records when each read starts, to see reads in flight."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started: list[int] = []

    def read_ahead(self, index):
        self.started.append(index)
        return super().read_ahead(index)


@pytest.mark.parametrize("prefetch", [0, 1, 3, 50])
def test_items_equal_the_dataset_in_sampler_order(bag_store, prefetch):
    data = BagDataset(bag_store, "enc")
    order = [4, 0, 8, 3, 3, 7]  # repeats are fine (padded DDP shards repeat items)
    items = list(BagLoader(data, order, prefetch=prefetch))
    assert [item["patient_id"] for item in items] == [f"P{i}" for i in order]
    for index, item in zip(order, items):
        expected = data[index]
        assert torch.equal(item["features"], expected["features"])
        assert item["time"] == expected["time"] and item["event"] == expected["event"]
        want = np.concatenate([_bag(index, s) for s in range(1 + index % 2)])
        assert np.array_equal(item["features"].numpy(), want)  # exact rows, written order


def test_reads_run_ahead_by_prefetch(bag_store):
    sequential = CountingBags(bag_store, "enc")
    iterator = iter(BagLoader(sequential, prefetch=0))
    next(iterator)
    assert sequential.started == [0]  # prefetch 0: one bag at a time

    data = CountingBags(bag_store, "enc")
    iterator = iter(BagLoader(data, prefetch=2))
    first = next(iterator)
    assert first["patient_id"] == "P0"
    assert data.started == [0, 1, 2]  # while item 0 is out, the next 2 are being read
    rest = list(iterator)
    assert len(rest) == 8 and data.started == list(range(9))  # each bag read exactly once


def test_batches_are_padded_bags_with_masks(bag_store):
    data = BagDataset(bag_store, "enc", with_survival=False)
    loader = BagLoader(data, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3  # 4 + 4 + 1
    sizes = [len(data[i]["features"]) for i in range(9)]
    assert batches[0]["features"].shape == (4, max(sizes[:4]), DIM)
    assert batches[0]["mask"].sum(1).tolist() == sizes[:4]
    assert batches[2]["features"].shape == (1, sizes[8], DIM)


def test_set_epoch_reshuffles_and_resamples(bag_store):
    data = BagDataset(bag_store, "enc", max_instances=5, seed=3)
    sharder = RankSharder(data, rank=0, world_size=1, shuffle=True, seed=11)
    loader = BagLoader(data, sharder)
    epoch0 = [(item["patient_id"], item["features"]) for item in loader]
    loader.set_epoch(1)
    epoch1 = {p: f for p, f in ((item["patient_id"], item["features"]) for item in loader)}
    assert [p for p, _ in epoch0] != list(epoch1)  # a new order
    assert sorted(p for p, _ in epoch0) == sorted(epoch1) == [f"P{p}" for p in range(9)]
    big = [p for p, f in epoch0 if len(f) == 5 and len(epoch1[p]) == 5
           and not torch.equal(f, epoch1[p])]
    assert big, "capped bags should get new subsets in a new epoch"


def test_ranks_get_equal_lengths_and_cover_every_patient(bag_store):
    data = BagDataset(bag_store, "enc", with_survival=False)
    seen, lengths = [], []
    for rank in range(2):
        sharder = RankSharder(data, rank=rank, world_size=2, shuffle=True, seed=0)
        loader = BagLoader(data, sharder, batch_size=2)
        lengths.append((len(loader), sum(1 for _ in loader)))
        seen += [data.patient_ids[i] for i in sharder.owned()]
    assert lengths == [(3, 3), (3, 3)]  # 9 patients -> 5 per rank (one pad) -> 3 batches
    assert sorted(seen) == [f"P{p}" for p in range(9)]


def test_a_failed_read_surfaces_at_its_turn_and_names_the_patient(bag_store, tmp_path):
    bag_store.upsert("patients", [{"patient_id": "EMPTY", "time": 1.0, "event": True}])
    data = BagDataset(bag_store, "enc", patient_ids=["P1", "EMPTY", "P2"])
    iterator = iter(BagLoader(data, prefetch=2))
    assert next(iterator)["patient_id"] == "P1"  # the bad read ahead does not break this one
    with pytest.raises(DataError, match="patient EMPTY has no vectors.*run the embed stage"):
        next(iterator)


def test_bad_settings_are_refused(bag_store):
    data = BagDataset(bag_store, "enc", with_survival=False)
    with pytest.raises(ValueError, match="prefetch"):
        BagLoader(data, prefetch=-1)
    with pytest.raises(ValueError, match="batch_size"):
        BagLoader(data, batch_size=0)
