"""``pmx store`` commands, through click's runner (same process, real store)."""

from __future__ import annotations

import json

import h5py
import numpy as np
from click.testing import CliRunner

from pmx.cli.main import cli
from pmx.featurestore import open_store


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _populated(tmp_path):
    store = open_store(tmp_path / "store")
    store.upsert("patients", [{"patient_id": "P1", "time": 5.0, "event": True}])
    with store.stage("embed", fingerprint="enc-a", params={"size": 224}, inputs=["tiles1"],
                     units=["S1", "S2"]) as stage:
        for slide in stage.pending():
            rows = store.write_embeddings("enc-a", slide, np.ones((4, 8), np.float32),
                                          coords=np.arange(8).reshape(4, 2), patient_id="P1")
            stage.done(slide, rows=rows)
    store.write_embeddings("enc-b", "S1", np.ones((2, 4), np.float16), patient_id="P1")
    return store


def test_info_and_artifacts(tmp_path):
    store = _populated(tmp_path)
    result = _invoke("store", "info", "--store", store.uri, "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["embeddings__enc-a"]["rows"] == 8 and tables["embeddings__enc-a"]["dim"] == 8
    assert tables["patients"]["rows"] == 1
    assert report["stages"] == {"embed": {"done": 1}}
    text = _invoke("store", "info", "--store", store.uri).output
    assert "embeddings__enc-b" in text and "4 float16" in text

    listing = json.loads(_invoke("store", "artifacts", "--store", store.uri, "--json").output)
    assert len(listing) == 1
    entry = listing[0]
    assert (entry["stage"], entry["fingerprint"], entry["status"], entry["done"], entry["units"],
            entry["rows"], entry["inputs"]) == ("embed", "enc-a", "done", 2, 2, 8, ["tiles1"])
    units = json.loads(_invoke("store", "artifacts", "--store", store.uri, "--units", entry["key"],
                               "--json").output)
    assert [u["unit"] for u in units] == ["S1", "S2"] and {u["rows"] for u in units} == {4}
    assert "embed" in _invoke("store", "artifacts", "--store", store.uri).output


def test_gc_compacts_and_drops_an_encoder(tmp_path):
    store = _populated(tmp_path)
    dry = _invoke("store", "gc", "--store", store.uri, "--drop-encoder", "enc-a", "--dry-run")
    assert dry.exit_code == 0 and "would drop" in dry.output
    assert "enc-a" in store.encoders()
    versions_before = len(open_store(store.uri).table("artifacts").list_versions())
    assert versions_before > 1
    result = _invoke("store", "gc", "--store", store.uri, "--drop-encoder", "enc-a", "--keep-days", "0")
    assert result.exit_code == 0, result.output
    fresh = open_store(store.uri)
    assert fresh.encoders() == ["enc-b"]
    assert fresh.read("artifacts").height == 0  # its cache records went with it
    assert len(fresh.table("artifacts").list_versions()) == 1  # old versions deleted
    assert fresh.count("patients") == 1
    assert fresh.read_bag("enc-b", patient_id="P1").shape == (2, 4)
    bad = _invoke("store", "gc", "--store", store.uri, "--drop-encoder", "nope")
    assert bad.exit_code == 2 and "no embeddings for encoder(s) nope" in bad.output


def test_export_then_import_through_the_cli(tmp_path):
    store = _populated(tmp_path)
    out = tmp_path / "h5"
    result = _invoke("store", "export-h5", "--store", store.uri, "--encoder", "enc-a", "--out", str(out))
    assert result.exit_code == 0 and "wrote 2 h5 file(s)" in result.output
    with h5py.File(out / "S2.h5", "r") as h5:
        assert h5["features"].shape == (4, 8)
        np.testing.assert_array_equal(h5["coords"][()], np.arange(8).reshape(4, 2))
    mapping = tmp_path / "map.tsv"
    mapping.write_text("slide_id\tpatient_id\nS1\tQ1\nS2\tQ2\n")
    target = tmp_path / "store2"
    result = _invoke("store", "import-h5", str(out), "--store", str(target), "--encoder", "imp",
                     "--patients", str(mapping))
    assert result.exit_code == 0, result.output
    assert "imported 2 slide(s), 8 vectors" in result.output
    assert open_store(target).read_bag("imp", patient_id="Q2").shape == (4, 8)
    again = _invoke("store", "import-h5", str(out), "--store", str(target), "--encoder", "imp")
    assert "imported 0 slide(s)" in again.output


def test_user_errors_exit_2_with_a_message(tmp_path):
    missing = _invoke("store", "info", "--store", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "no feature store at" in missing.output
    store = _populated(tmp_path)
    result = _invoke("store", "export-h5", "--store", store.uri, "--encoder", "enc-a",
                     "--out", str(tmp_path / "o"), "--slide", "S9")
    assert result.exit_code == 2 and "no vectors for slide(s) S9" in result.output
    bad_map = tmp_path / "map.csv"
    bad_map.write_text("slide,patient\nS1,P1\n")
    result = _invoke("store", "import-h5", str(tmp_path), "--store", store.uri, "--encoder", "x",
                     "--patients", str(bad_map))
    assert result.exit_code == 2 and "needs columns slide_id and patient_id" in result.output
