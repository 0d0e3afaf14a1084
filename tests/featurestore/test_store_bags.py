"""Bag reads through the row-run index, and the writer's shortcuts: exact rows in written order,
pinned versions after rewrites, scattered rows, other writers noticed, the embeddings file format."""

from __future__ import annotations

import numpy as np
import pytest

from pmx.featurestore import open_store
from pmx.featurestore.bagindex import MAX_RUNS
from pmx.featurestore.store import EMBEDDINGS_FILE_VERSION

DIM = 8


def _vectors(slide: str, n: int) -> np.ndarray:
    seed = sum(ord(c) * 31 ** i for i, c in enumerate(slide)) % 2**32
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float16)


def _coords(n: int, shift: int = 0) -> np.ndarray:
    return np.stack([np.arange(n) * 224 + shift, np.full(n, 448)], axis=1)


# written in this order: P0's and P2's slides are interleaved with other patients' slides
WRITES = [("P0", "P0-A", 7), ("P1", "P1-A", 5), ("P0", "P0-B", 4), ("P2", "P2-A", 9),
          ("P2", "P2-B", 3), ("P2", "P2-C", 6), ("P0", "P0-C", 2), ("P3", "P3-A", 1)]


def _expected(patient: str) -> np.ndarray:
    return np.concatenate([_vectors(s, n) for p, s, n in WRITES if p == patient])


@pytest.fixture
def store(tmp_path):
    store = open_store(tmp_path / "store")
    for patient, slide, n in WRITES:
        store.write_embeddings("enc", slide, _vectors(slide, n), coords=_coords(n),
                               patient_id=patient, tiler="grid")
    return store


def test_bags_come_back_exact_in_written_order_by_either_path(store, tmp_path):
    index = store.bag_index("enc")
    assert index.runs(patient_id="P0") == [(0, 7), (12, 4), (34, 2)]
    assert index.runs(patient_id="P2") == [(16, 18)]  # three slides, one run
    assert index.runs(patient_id="nobody") == []
    fresh = open_store(tmp_path / "store")  # no index yet: the first reads are indexed queries
    for patient in ("P0", "P1", "P2", "P3"):
        expected = _expected(patient)
        by_runs = store.read_bag("enc", patient_id=patient, index=index)
        by_query = fresh.read_bag("enc", patient_id=patient)
        assert by_runs.dtype == np.float16 and by_runs.flags.writeable
        np.testing.assert_array_equal(by_runs, expected)
        np.testing.assert_array_equal(by_query, expected)
    vectors, coords, slides = store.read_bag("enc", slide_id="P2-B", with_coords=True, index=index)
    np.testing.assert_array_equal(vectors, _vectors("P2-B", 3))
    np.testing.assert_array_equal(coords, _coords(3))
    assert list(slides) == ["P2-B"] * 3
    assert store.read_bag("enc", patient_id="nobody", index=index).shape == (0, DIM)
    bag = store.read_bag("enc", patient_id="P2", index=index)
    del index, store
    bag[0, 0] = 5.0  # the array owns (keeps alive) its memory
    assert bag[0, 0] == 5.0


def test_cached_index_is_built_after_a_few_reads_and_follows_new_versions(store):
    physical = "embeddings__enc"
    for _ in range(3):
        store.read_bag("enc", patient_id="P1")
    version = store.head(physical)
    assert (physical, version) in store._bag_indices
    store.write_embeddings("enc", "P1-B", _vectors("P1-B", 4), patient_id="P1", tiler="grid")
    bag = np.concatenate([_vectors("P1-A", 5), _vectors("P1-B", 4)])
    for _ in range(4):  # filtered queries first, then a new index for the new version
        np.testing.assert_array_equal(store.read_bag("enc", patient_id="P1"), bag)
    assert (physical, store.head(physical)) in store._bag_indices


def test_rewrites_shift_rows_and_pinned_versions_keep_their_bags(store):
    old = store.head("embeddings__enc")
    old_index = store.bag_index("enc", old)
    store.write_embeddings("enc", "P0-A", _vectors("P0-A*", 3), coords=_coords(3, shift=1),
                           patient_id="P0", tiler="grid")  # deletes rows mid-table, appends 3
    new = store.head("embeddings__enc")
    assert new > old
    np.testing.assert_array_equal(store.read_bag("enc", patient_id="P0", version=old,
                                                 index=old_index), _expected("P0"))
    index = store.bag_index("enc", new)
    assert index.rows == old_index.rows - 7 + 3
    rewritten = np.concatenate([_vectors("P0-B", 4), _vectors("P0-C", 2), _vectors("P0-A*", 3)])
    np.testing.assert_array_equal(store.read_bag("enc", patient_id="P0", index=index), rewritten)
    for patient in ("P1", "P2", "P3"):  # their rows moved up by the deletion
        np.testing.assert_array_equal(store.read_bag("enc", patient_id=patient, index=index),
                                      _expected(patient))
    assert store.count("embeddings", "slide_id = 'P0-A'") == 3


def test_rows_scattered_over_many_runs_are_read_with_a_query(tmp_path):
    store = open_store(tmp_path / "store")
    slides = [(f"P{i % 2}", f"S{i:02d}") for i in range(2 * MAX_RUNS + 4)]
    for patient, slide in slides:
        store.write_embeddings("enc", slide, _vectors(slide, 2), patient_id=patient)
    index = store.bag_index("enc")
    assert len(index.runs(patient_id="P0")) > MAX_RUNS
    expected = np.concatenate([_vectors(s, 2) for p, s in slides if p == "P0"])
    np.testing.assert_array_equal(store.read_bag("enc", patient_id="P0", index=index), expected)


def test_a_writer_notices_other_writers_and_stays_exact(tmp_path):
    first, second = open_store(tmp_path / "store"), open_store(tmp_path / "store")
    first.write_embeddings("enc", "S1", _vectors("a", 6), patient_id="P1")
    assert first._units["embeddings__enc"][1] == {("S1", "none")}  # known without a query
    second.write_embeddings("enc", "S2", _vectors("b", 5), patient_id="P2")
    second.write_embeddings("enc", "S1", _vectors("c", 4), patient_id="P1")
    first.write_embeddings("enc", "S1", _vectors("d", 3), patient_id="P1")  # must delete c
    second.write_embeddings("enc", "S2", _vectors("e", 2), patient_id="P2")  # must delete b
    for store in (first, second, open_store(tmp_path / "store")):
        assert store.count("embeddings", "slide_id = 'S1'") == 3
        assert store.count("embeddings", "slide_id = 'S2'") == 2
        np.testing.assert_array_equal(store.read_bag("enc", slide_id="S1"), _vectors("d", 3))
        np.testing.assert_array_equal(store.read_bag("enc", slide_id="S2"), _vectors("e", 2))


def test_a_stage_sees_units_another_handle_finished(tmp_path):
    mine, theirs = open_store(tmp_path / "store"), open_store(tmp_path / "store")
    with mine.stage("embed", fingerprint="enc", units=["S1", "S2", "S3"]) as stage:
        with theirs.stage("embed", fingerprint="enc", units=["S1", "S2", "S3"]) as other:
            other.done("S2", rows=5)  # finished elsewhere after `stage` read its records
        computed = []
        for unit in stage.pending():
            computed.append(unit)
            stage.done(unit, rows=1)
    assert computed == ["S1", "S3"] and stage.complete and stage.rows == 7
    units = mine.read("artifacts", where="unit != '*'", columns=["unit"])["unit"].to_list()
    assert sorted(units) == ["S1", "S2", "S3"]  # each recorded once


def test_new_embeddings_tables_use_the_chosen_file_format(store):
    data = sorted((store.local_dir / "embeddings__enc.lance" / "data").glob("*.lance"))
    assert data
    major, minor = np.frombuffer(data[0].read_bytes()[-8:-4], dtype="<u2")
    assert EMBEDDINGS_FILE_VERSION == "2.0"  # the lancedb default (2.2) reads vectors slower
    assert (major, minor) == (0, 3)  # how Lance marks format 2.0 in a data file's footer
