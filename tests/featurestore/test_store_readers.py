"""Training readers: MIL bags, tile pixels, omics vectors, spawn workers and DDP sharding."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from pmx.errors import DataError
from pmx.featurestore import open_store
from pmx.featurestore.datasets import (BagDataset, OmicsDataset, TileDataset, collate_bags,
                                       loader_kwargs)
from pmx.featurestore.omics import write_omics
from pmx.featurestore.sharding import RankSharder, ShardedBatchSampler, shard_indices

DIM = 12


def _bag(patient: int, slide: int) -> np.ndarray:
    n = 5 + 3 * patient + slide
    return np.random.default_rng([patient, slide]).standard_normal((n, DIM)).astype(np.float32)


def _fill(store, n_patients: int) -> None:
    store.upsert("patients", [{"patient_id": f"P{p}", "time": 10.0 + p, "event": p % 2 == 0}
                              for p in range(n_patients)])
    for p in range(n_patients):
        for s in range(1 + p % 2):  # odd patients have two slides
            store.write_embeddings("enc", f"P{p}-S{s}", _bag(p, s), patient_id=f"P{p}")


def _expected(p: int) -> np.ndarray:
    return np.concatenate([_bag(p, s) for s in range(1 + p % 2)])


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a[np.lexsort(a.T)], b[np.lexsort(b.T)])


@pytest.fixture
def bag_store(tmp_path):
    store = open_store(tmp_path / "store")
    _fill(store, 7)
    return store


def test_bag_dataset_items_and_collate(bag_store):
    data = BagDataset(bag_store, "enc")
    assert data.patient_ids == [f"P{p}" for p in range(7)] and data.dim == DIM
    item = data[3]
    assert item["patient_id"] == "P3" and item["features"].dtype == torch.float32
    assert _same_rows(item["features"].numpy(), _expected(3))
    assert item["time"].item() == 13.0 and item["event"].item() is False
    capped = BagDataset(bag_store, "enc", max_instances=4, seed=1)
    assert capped[5]["features"].shape == (4, DIM)
    rows = {tuple(r) for r in _expected(5)}
    assert all(tuple(r) in rows for r in capped[5]["features"].numpy())
    batch = collate_bags([data[0], data[6]])
    assert batch["features"].shape == (2, len(_expected(6)), DIM)
    assert batch["mask"].sum(1).tolist() == [len(_expected(0)), len(_expected(6))]
    assert batch["event"].tolist() == [True, True]


def test_bag_dataset_errors_name_the_fix(bag_store):
    with pytest.raises(DataError, match="no embeddings for encoder 'nope'"):
        BagDataset(bag_store, "nope")
    with pytest.raises(DataError, match="no survival outcome.*P99"):
        BagDataset(bag_store, "enc", patient_ids=["P0", "P99"])
    empty = BagDataset(bag_store, "enc", patient_ids=["P99"], with_survival=False)
    with pytest.raises(DataError, match="P99 has no vectors"):
        empty[0]


def test_bag_dataset_reads_a_pinned_snapshot(bag_store):
    data = BagDataset(bag_store, "enc")
    before = data[0]["features"].shape[0]
    bag_store.write_embeddings("enc", "P0-S9", _bag(0, 9), patient_id="P0")  # written later
    assert data[0]["features"].shape[0] == before
    assert BagDataset(bag_store, "enc")[0]["features"].shape[0] == before + len(_bag(0, 9))


def test_spawn_workers_read_every_bag(bag_store):
    data = BagDataset(bag_store.uri, "enc")
    loader = DataLoader(data, batch_size=None, **loader_kwargs(1))
    assert loader.multiprocessing_context.get_start_method() == "spawn"
    seen = {}
    for item in loader:
        seen[item["patient_id"]] = item["features"].numpy()
    assert sorted(seen) == data.patient_ids
    assert all(_same_rows(seen[f"P{p}"], _expected(p)) for p in range(7))


@pytest.mark.parametrize("n", [0, 1, 5, 7, 12, 13])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_have_equal_length_and_partition_the_data(n, world):
    shards = [shard_indices(n, r, world, shuffle=True, seed=3, epoch=1) for r in range(world)]
    assert len({len(ix) for ix, _ in shards}) == 1
    owned = [i for ix, pad in shards for i, p in zip(ix, pad) if not p]
    assert sorted(owned) == list(range(n))
    batches = [len(ShardedBatchSampler(n, 2, rank=r, world_size=world, seed=3)) for r in range(world)]
    assert len(set(batches)) == 1
    unpadded = [shard_indices(n, r, world, pad=False)[0] for r in range(world)]
    assert len({len(ix) for ix in unpadded}) == 1


def test_sharder_reshuffles_per_epoch_consistently_across_ranks():
    first = [list(RankSharder(10, rank=r, world_size=2, seed=0)) for r in range(2)]
    sharder = RankSharder(10, rank=0, world_size=2, seed=0)
    sharder.set_epoch(1)
    assert list(sharder) != first[0]
    assert sorted(first[0] + first[1]) == list(range(10))


def _ddp_rank(rank: int, world: int, store_uri: str, init_file: str, out_dir: str) -> None:
    import datetime

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))
    data = BagDataset(store_uri, "enc")
    sampler = ShardedBatchSampler(data, batch_size=2, seed=5)  # rank/world from the process group
    loader = DataLoader(data, batch_sampler=sampler, collate_fn=collate_bags)
    batches, seen = 0, []
    for batch in loader:
        total = torch.tensor([batch["features"].sum().item()])
        dist.all_reduce(total)  # what DDP does every step: hangs if batch counts differ
        batches += 1
        seen += batch["patient_id"]
    owned = [data.patient_ids[i] for i in sampler.owned()]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, owned)
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(
        {"batches": batches, "seen": seen, "owned": owned, "all_owned": gathered}))
    dist.destroy_process_group()


def test_ddp_ranks_get_equal_batches_and_cover_every_patient_once(bag_store, tmp_path):
    world = 2
    mp.spawn(_ddp_rank, args=(world, bag_store.uri, str(tmp_path / "init"), str(tmp_path)),
             nprocs=world, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    assert {r["batches"] for r in results} == {2}  # 7 patients / 2 ranks -> 4 each -> 2 batches
    owned = [p for r in results for p in r["owned"]]
    assert sorted(owned) == [f"P{p}" for p in range(7)]  # every patient exactly once
    assert results[0]["all_owned"] == [r["owned"] for r in results]
    assert all(set(r["owned"]) <= set(r["seen"]) for r in results)


def test_omics_dataset(tmp_path):
    store = open_store(tmp_path / "store")
    store.upsert("patients", [{"patient_id": f"P{p}", "time": float(p), "event": True}
                              for p in range(4)])
    rna = np.arange(12, dtype=np.float32).reshape(4, 3)
    write_omics(store, ["P0", "P1", "P2", "P3"], rna, ["g1", "g2", "g3"], modality="rna")
    write_omics(store, ["P3", "P1"], [[1.0, 2.0], [3.0, 4.0]], ["m1", "m2"], modality="mirna",
                source="sel", fold=2)
    single = OmicsDataset(store, "rna")
    assert len(single) == 4 and torch.equal(single[2]["omics"], torch.tensor([6.0, 7.0, 8.0]))
    both = OmicsDataset(store, ["rna", "mirna"], sources={"rna": "raw", "mirna": "sel"}, fold=2)
    assert both.patient_ids == ["P1", "P3"]
    item = both[1]
    assert torch.equal(item["omics"]["mirna"], torch.tensor([1.0, 2.0]))
    assert torch.equal(item["omics"]["rna"], torch.tensor([9.0, 10.0, 11.0]))
    assert item["time"].item() == 3.0
    assert both.features["mirna"] == ["m1", "m2"]
    with pytest.raises(DataError, match="no values for patient"):
        OmicsDataset(store, ["rna", "mirna"], sources={"mirna": "sel"}, fold=2, patient_ids=["P0"])
    with pytest.raises(DataError, match="no omics for modality 'cnv'"):
        OmicsDataset(store, "cnv")


@pytest.fixture
def tile_store(tmp_path, testdata):
    import openslide

    slide_path = testdata / "CMU-1-Small-Region.svs"
    store = open_store(tmp_path / "store")
    with openslide.OpenSlide(str(slide_path)) as slide:
        width, height = slide.dimensions
        store.upsert("slides", [{"slide_id": "CMU-1", "patient_id": "P1", "path": str(slide_path),
                                 "width": width, "height": height}])
        rows = []
        for i, (x, y) in enumerate([(0, 0), (512, 512), (1024, 256), (1536, 2048)]):
            pixels = None
            if i % 2 == 0:  # half the tiles keep PNG pixels, the rest are read from the slide
                buffer = io.BytesIO()
                slide.read_region((x, y), 0, (128, 128)).convert("RGB").save(buffer, "PNG")
                pixels = buffer.getvalue()
            rows.append({"tiler": "grid", "slide_id": "CMU-1", "patient_id": "P1", "level": 0,
                         "x": x, "y": y, "size": 128, "tissue": 0.25 * i, "pixels": pixels,
                         "pixel_format": "png" if pixels else None})
        store.upsert("tiles", rows)
        expected = {(x, y): np.asarray(slide.read_region((x, y), 0, (128, 128)).convert("RGB"))
                    for x, y in [(r["x"], r["y"]) for r in rows]}
        region = np.asarray(slide.read_region((512, 512), 0, (300, 200)).convert("RGB"))
    return store, expected, region


def test_tile_dataset_stored_and_slide_pixels(tile_store):
    store, expected, region = tile_store
    data = TileDataset(store, "grid")
    assert len(data) == 4
    for i in range(4):
        item = data[i]
        assert item["image"].shape == (3, 128, 128) and item["image"].dtype == torch.uint8
        np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(),
                                      expected[(item["x"], item["y"])])
    assert len(TileDataset(store, "grid", min_tissue=0.5)) == 2
    regions = TileDataset(store, "grid", source="slide", region=(300, 200), min_tissue=0.2,
                          transform=lambda image: np.asarray(image))
    picked = [i for i in range(len(regions)) if regions.rows["x"][i] == 512]
    np.testing.assert_array_equal(regions[picked[0]]["image"], region)
    with pytest.raises(DataError, match="stored no pixels"):
        TileDataset(store, "grid", source="store")
    with pytest.raises(DataError, match="no tiles for tiler 'other'"):
        TileDataset(store, "other")


def test_tile_dataset_pickles_without_open_slides(tile_store):
    """What a spawn worker receives: no OpenSlide or Lance handles, and it reads the same pixels."""
    import pickle

    store, expected, _ = tile_store
    data = TileDataset(store, "grid", source="slide")
    data[0]  # opens the slide in this process
    assert data._slides and store._db is not None
    clone = pickle.loads(pickle.dumps(data))
    assert clone._slides == {} and clone.store._db is None
    for i in range(len(clone)):
        item = clone[i]
        np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(),
                                      expected[(item["x"], item["y"])])


@pytest.mark.slow
def test_tile_dataset_in_a_spawn_worker(tile_store):
    store, expected, _ = tile_store
    loader = DataLoader(TileDataset(store.uri, "grid"), batch_size=2, **loader_kwargs(1))
    seen = 0
    for batch in loader:
        for image, x, y in zip(batch["image"], batch["x"].tolist(), batch["y"].tolist()):
            np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), expected[(x, y)])
            seen += 1
    assert seen == 4
