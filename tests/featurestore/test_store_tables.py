"""Round trip of every table, keyed idempotent writes, validation errors and index use."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from pmx.errors import DataError
from pmx.featurestore import TABLES, open_store, schemas
from pmx.featurestore.omics import read_omics, write_omics

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

ROWS = {
    "patients": [
        {"patient_id": "P1", "time": 120.5, "event": True, "site": "A1", "cohort": "TCGA-BLCA",
         "clinical": '{"age": 61}'},
        {"patient_id": "P2", "time": 800.0, "event": False, "site": "B2", "cohort": "TCGA-BLCA",
         "clinical": None},
    ],
    "slides": [
        {"slide_id": "S1", "patient_id": "P1", "path": "/data/S1.svs", "vendor": "aperio",
         "mpp": 0.499, "magnification": 20.0, "width": 2220, "height": 2967, "fingerprint": "ab12"},
        {"slide_id": "S2", "patient_id": "P2", "path": "/data/S2.ndpi", "vendor": "hamamatsu",
         "mpp": 0.23, "magnification": 40.0, "width": 90000, "height": 60000, "fingerprint": "cd34"},
    ],
    "tiles": [
        {"tiler": "t1", "slide_id": "S1", "patient_id": "P1", "level": 0, "mpp": 0.5, "x": 0,
         "y": 256, "size": 256, "tissue": 0.75, "pixels": b"\xff\xd8jpeg", "pixel_format": "jpeg"},
        {"tiler": "t1", "slide_id": "S1", "patient_id": "P1", "level": 0, "mpp": 0.5, "x": 256,
         "y": 256, "size": 256, "tissue": 0.5, "pixels": None, "pixel_format": None},
    ],
    "splits": [
        {"split": "k5s0", "seed": 0, "fold": 0, "patient_id": "P1", "part": "train"},
        {"split": "k5s0", "seed": 0, "fold": 0, "patient_id": "P2", "part": "test"},
    ],
    "artifacts": [
        {"key": "k1", "unit": "S1", "stage": "tile", "fingerprint": "t1", "params": '{"size": 256}',
         "inputs": ["in1", "in2"], "status": "done", "rows": 2, "units": None,
         "started_at": NOW, "finished_at": NOW, "host": "h:1"},
    ],
    "runs": [
        {"run_id": "r1", "method": "cmta", "preset": "tiny", "config": "{}", "cohort": "TCGA-BLCA",
         "status": "done", "started_at": NOW, "finished_at": NOW, "out_dir": "runs/r1"},
    ],
    "predictions": [
        {"run_id": "r1", "fold": 0, "patient_id": "P1", "part": "test", "risk": 0.7, "time": 120.5,
         "event": True, "survival": [1.0, 0.8, 0.5]},
        {"run_id": "r1", "fold": 0, "patient_id": "P2", "part": "test", "risk": -0.2, "time": 800.0,
         "event": False, "survival": None},
    ],
    "metrics": [
        {"run_id": "r1", "fold": 0, "name": "c_index", "value": 0.71},
        {"run_id": "r1", "fold": -1, "name": "c_index", "value": 0.68},
    ],
}


@pytest.fixture
def store(tmp_path):
    return open_store(tmp_path / "store")


def _sorted(frame: pl.DataFrame, keys) -> list[dict]:
    return frame.sort(list(keys)).to_dicts()


@pytest.mark.parametrize("table", sorted(ROWS))
def test_round_trip_and_idempotent_rerun(store, table):
    spec = TABLES[table]
    rows = ROWS[table]
    assert store.upsert(table, rows) == len(rows)
    assert store.upsert(table, rows) == len(rows)  # a rerun updates, never duplicates
    back = store.read(table)
    assert back.height == len(rows)
    assert back.columns == spec.schema.names
    expected = pl.DataFrame(rows, schema=back.schema).sort(list(spec.keys)).to_dicts()
    assert _sorted(back, spec.keys) == expected


def test_upsert_updates_by_key_and_keeps_other_rows(store):
    store.upsert("patients", ROWS["patients"])
    store.upsert("patients", [{"patient_id": "P1", "time": 99.0, "event": False}])
    back = {r["patient_id"]: r for r in store.read("patients").to_dicts()}
    assert back["P1"]["time"] == 99.0 and back["P1"]["event"] is False
    assert back["P2"]["time"] == 800.0  # untouched
    assert store.count("patients") == 2


def test_repeated_keys_in_one_batch_keep_the_last(store):
    store.upsert("metrics", [{"run_id": "r", "fold": 0, "name": "c", "value": 1.0},
                             {"run_id": "r", "fold": 0, "name": "c", "value": 2.0}])
    assert store.read("metrics")["value"].to_list() == [2.0]


def test_read_filters_and_columns(store):
    store.upsert("slides", ROWS["slides"])
    got = store.read("slides", where="patient_id = 'P2'", columns=["slide_id", "vendor"])
    assert got.to_dicts() == [{"slide_id": "S2", "vendor": "hamamatsu"}]
    assert store.read("runs").height == 0  # a table not written yet reads as empty
    assert store.read("runs").columns == TABLES["runs"].schema.names


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_embeddings_round_trip(store, dtype):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((30, 24)).astype(dtype)
    coords = np.stack([np.arange(30) * 224, np.full(30, 448)], axis=1)
    assert store.write_embeddings("enc.v1", "S1", vectors, coords=coords, patient_id="P1",
                                  tiler="t1") == 30
    store.write_embeddings("enc.v1", "S2", vectors[:5] * 2, coords=coords[:5], patient_id="P1",
                           tiler="t1")
    assert store.encoders() == ["enc.v1"]
    assert store.embedding_info("enc.v1") == (24, dtype)
    bag, got_coords, slides = store.read_bag("enc.v1", slide_id="S1", with_coords=True)
    assert bag.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(bag, vectors)
    np.testing.assert_array_equal(got_coords, coords)
    assert store.read_bag("enc.v1", patient_id="P1").shape == (35, 24)
    # rewriting a slide replaces its rows
    store.write_embeddings("enc.v1", "S1", vectors[:10], coords=coords[:10], patient_id="P1",
                           tiler="t1")
    assert store.count("embeddings") == 15
    frame = store.read("embeddings", where="slide_id = 'S2'")
    assert frame.height == 5 and frame["encoder"].unique().to_list() == ["enc.v1"]


def test_embeddings_generic_upsert_routes_by_encoder(store):
    rows = [{"encoder": enc, "tiler": "t", "slide_id": "S1", "patient_id": "P1", "level": 0,
             "x": i, "y": 0, "vector": [float(i)] * dim}
            for enc, dim in (("a", 4), ("b", 8)) for i in range(3)]
    assert store.upsert("embeddings", rows) == 6
    assert store.upsert("embeddings", rows) == 6
    assert sorted(store.encoders()) == ["a", "b"]
    assert store.embedding_info("a")[0] == 4 and store.embedding_info("b")[0] == 8
    assert store.count("embeddings") == 6
    assert store.read_bag("b", patient_id="P1").shape == (3, 8)
    with pytest.raises(DataError, match="width 4"):
        store.upsert("embeddings", [{**rows[0], "vector": [1.0] * 5}])


def test_omics_round_trip_with_feature_names_once(store):
    genes = ["TP53", "EGFR", "MYC"]
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    write_omics(store, ["P2", "P1"], values, genes, modality="rna", groups=["a", "b", "b"])
    write_omics(store, ["P2", "P1"], values, genes, modality="rna")  # rerun: no duplicates
    assert store.count("omics") == 2 and store.count("omics_features") == 1
    matrix = read_omics(store, modality="rna")
    assert matrix.patient_ids == ["P1", "P2"] and matrix.features == genes
    np.testing.assert_array_equal(matrix.values, values[[1, 0]])
    # a selector's output for one fold, with a different feature list, is kept separately
    write_omics(store, ["P1", "P2"], values[:, :2], genes[:2], modality="rna", source="sel123", fold=3)
    selected = read_omics(store, modality="rna", source="sel123", fold=3, patient_ids=["P2", "P1"])
    assert selected.features == ["TP53", "EGFR"]
    np.testing.assert_array_equal(selected.values, values[[1, 0], :2])
    assert read_omics(store, modality="rna").values.shape == (2, 3)
    # the same key with a new feature list replaces every row of that (modality, source, fold)
    write_omics(store, ["P3"], [[7.0]], ["MYC"], modality="rna", source="sel123", fold=3)
    again = read_omics(store, modality="rna", source="sel123", fold=3)
    assert again.patient_ids == ["P3"] and again.features == ["MYC"]
    with pytest.raises(DataError, match="no values for patient"):
        read_omics(store, modality="rna", patient_ids=["P9"])
    with pytest.raises(DataError, match="do not match"):
        write_omics(store, ["P1"], values, genes, modality="rna")


def test_bad_rows_are_rejected_with_clear_errors(store):
    with pytest.raises(DataError, match="unknown column.*colour"):
        store.upsert("patients", [{"patient_id": "P1", "colour": "red"}])
    with pytest.raises(DataError, match="required column 'patient_id'"):
        store.upsert("slides", [{"slide_id": "S1"}])
    with pytest.raises(DataError, match="null"):
        store.upsert("patients", [{"patient_id": None, "time": 1.0}])
    with pytest.raises(DataError, match="cannot be stored"):
        store.upsert("patients", [{"patient_id": "P1", "time": "soon"}])
    with pytest.raises(DataError, match="unknown store table 'patient'"):
        store.upsert("patient", [{"patient_id": "P1"}])
    with pytest.raises(DataError, match="cannot name a table"):
        store.write_embeddings("bad encoder/name", "S1", np.zeros((1, 2)))
    assert store.count("patients") == 0  # nothing half-written


def test_bag_query_uses_the_scalar_index(store):
    for slide in range(4):
        store.write_embeddings("enc", f"S{slide}", np.ones((10, 8), np.float32),
                               patient_id=f"P{slide // 2}")
    table = store.table("embeddings__enc")
    indexed = {tuple(ix.columns) for ix in table.list_indices()}
    assert {("slide_id",), ("patient_id",)} <= indexed
    store.refresh_indices()
    assert all(ix.num_unindexed_rows == 0 for ix in table.list_indices())
    plan = table.search().where("patient_id = 'P1'").select(["vector"]).explain_plan(True)
    assert "ScalarIndexQuery" in plan and "patient_id" in plan
    assert store.read_bag("enc", patient_id="P1").shape == (20, 8)


def test_store_pickles_as_its_uri(store):
    store.upsert("patients", ROWS["patients"])
    clone = pickle.loads(pickle.dumps(store))
    assert clone.uri == store.uri and clone._db is None
    assert clone.count("patients") == 2


def test_every_table_has_keys_and_documented_columns():
    for spec in TABLES.values():
        assert set(spec.keys) <= set(spec.schema.names)
        assert set(spec.indexed) <= set(spec.schema.names)
        assert set(spec.descriptions) == set(spec.schema.names)
        assert all(spec.descriptions.values())
    assert schemas.embeddings_spec("e", 8, "float16").schema.field("vector").type.list_size == 8


def test_info_reports_tables_and_stages(store):
    store.upsert("patients", ROWS["patients"])
    with store.stage("tile", fingerprint="t1", units=["S1"]) as stage:
        for unit in stage.pending():
            stage.done(unit, rows=3)
    info = store.info()
    tables = {t["table"]: t for t in info["tables"]}
    assert tables["patients"]["rows"] == 2 and tables["patients"]["bytes"] > 0
    assert info["stages"] == {"tile": {"done": 1}}
