"""`pmx demo-data` + `pmx ingest` + `pmx cohort info` end to end, against the real feature store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _cohort_inputs import PATIENTS, star_counts_of, write_cohort_folder
from click.testing import CliRunner

from pmx.cli.main import cli
from pmx.cohorts import ingest, load_cohort
from pmx.cohorts.readers import read_star_counts
from pmx.errors import DataError
from pmx.featurestore import open_store, read_omics


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_ingest_info_end_to_end(small_demo, store_dir):
    out = _invoke("ingest", str(small_demo.manifest), "--store", str(store_dir), "--json")
    result = json.loads(out)
    assert result["cached"] is False and result["rows"]["patients"] == 40
    info = json.loads(_invoke("cohort", "info", "--store", str(store_dir), "--json"))
    truth = json.loads((small_demo.root / "truth.json").read_text())
    assert info["cohort"] == "pmx-demo"
    assert info["patients"] == 40 and info["events"] == truth["n_events"]
    assert info["slides"] == small_demo.n_slides
    modalities = {m["modality"]: m for m in info["modalities"]}
    assert list(modalities) == ["slide", "rna", "mirna", "methylation"]
    assert modalities["rna"]["features"] == 300 and modalities["methylation"]["patients"] == 40
    assert info["combinations"] == [{"modalities": "slide+rna+mirna+methylation", "patients": 40}]

    store = open_store(store_dir)
    slides = store.read("slides").to_pandas()
    assert len(slides) == small_demo.n_slides
    assert set(slides["vendor"]) == {"aperio"} and set(slides["mpp"]) == {0.5}
    patients = store.read("patients").to_pandas().set_index("patient_id")
    clinical = pd.read_csv(small_demo.root / "truth.tsv", sep="\t").set_index("patient_id")
    assert (patients.loc[clinical.index, "time"].to_numpy() == clinical["time"].to_numpy()).all()
    assert (patients.loc[clinical.index, "event"].to_numpy() == clinical["event"].astype(bool).to_numpy()).all()

    # stored raw RNA equals the counts in the GDC file of the sample the duplicate rule kept
    rna = read_omics(store, modality="rna")
    patient = rna.patient_ids[0]
    samples = json.loads(patients.loc[patient, "clinical"])["samples"]
    sheet = pd.read_csv(small_demo.root / "omics" / "gdc_sample_sheet.tsv", sep="\t")
    kept = sheet[(sheet["Sample ID"] == samples["rna"][:16]) & (sheet["Data Type"].str.startswith("Gene"))]
    [file] = list((small_demo.root / "omics" / "rna").glob(f"*/{kept['File Name'].iloc[0]}"))
    expected = read_star_counts(file).reindex(rna.features).to_numpy()
    np.testing.assert_array_equal(rna.values[0], expected.astype(np.float32))

    # rerun: a cache hit, no duplicated rows
    again = json.loads(_invoke("ingest", str(small_demo.manifest), "--store", str(store_dir), "--json"))
    assert again["cached"] is True
    assert store.count("patients") == 40 and store.count("omics") == 120


def test_real_test_data_cohort_round_trip(tmp_path, testdata, store_dir):
    manifest = write_cohort_folder(tmp_path / "mini", testdata, mpp_override=0.25)
    result = ingest(manifest, store_dir)
    assert result.rows["patients"] == 4 and result.rows["slides"] == 2
    store = open_store(store_dir)
    rna = read_omics(store, modality="rna")
    assert rna.patient_ids == sorted(PATIENTS[:3])
    sample = testdata / "star_gene_counts_sample.tsv"
    for k, patient in enumerate(sorted(PATIENTS[:3])):
        expected = star_counts_of(sample, 1.0 + PATIENTS.index(patient))
        got = dict(zip(rna.features, rna.values[k]))
        assert got == pytest.approx(expected)
    meth = read_omics(store, modality="methylation")
    np.testing.assert_allclose(meth.values, np.load(manifest.parent / "methylation_values.npy"), atol=1e-6)
    slides = store.read("slides").to_pandas().set_index("patient_id")
    assert slides.loc[PATIENTS[1], "mpp"] == 0.25  # the table's override wins over the file's 0.499
    assert slides.loc[PATIENTS[0], "mpp"] == pytest.approx(0.499)
    assert slides.loc[PATIENTS[0], "fingerprint"] != slides.loc[PATIENTS[1], "fingerprint"]


def test_reingest_after_a_change_removes_stale_rows(tmp_path, testdata, store_dir):
    manifest = write_cohort_folder(tmp_path / "mini", testdata)
    ingest(manifest, store_dir)
    clinical = manifest.parent / "clinical.csv"
    clinical.write_text("\n".join(line for line in clinical.read_text().splitlines() if PATIENTS[3] not in line))
    result = ingest(manifest, store_dir)
    assert result.cached is False
    store = open_store(store_dir)
    assert sorted(store.read("patients")["patient_id"].to_list()) == sorted(PATIENTS[:3])
    assert PATIENTS[3] not in read_omics(store, modality="methylation").patient_ids
    assert store.count("omics") == 6  # 3 rna + 3 methylation, nothing left over


def test_another_cohort_with_a_different_feature_list_is_refused(tmp_path, testdata, small_demo, store_dir):
    ingest(write_cohort_folder(tmp_path / "mini", testdata), store_dir)
    store = open_store(store_dir)
    before = store.count("omics")
    with pytest.raises(DataError, match="different feature list"):
        ingest(small_demo.manifest, store_dir)
    assert store.count("omics") == before and store.count("patients") == 4


def test_cohort_info_from_a_manifest_and_errors(tmp_path, testdata, store_dir):
    manifest = write_cohort_folder(tmp_path / "mini", testdata)
    text = _invoke("cohort", "info", str(manifest))
    assert "cohort mini: 4 patients, 2 events" in text
    assert "slide" in text and "rna" in text and "duplicate-samples" in text
    data = json.loads(_invoke("cohort", "info", str(manifest), "--json"))
    assert data["validation"]["ok"] is True
    assert {m["modality"]: m["patients"] for m in data["modalities"]} == {"slide": 2, "rna": 3, "methylation": 4}
    # `--cohort DIR` names a manifest folder, as in `pmx run`: same report, nothing ingested
    assert _invoke("cohort", "info", "--cohort", str(manifest.parent), "--store", str(store_dir)) == text
    result = CliRunner().invoke(cli, ["cohort", "info", "--store", str(store_dir)])
    assert result.exit_code == 2 and "pmx ingest" in result.output


def test_demo_data_command(tmp_path):
    out = tmp_path / "demo"
    text = _invoke("demo-data", str(out), "--patients", "12", "--slide-size", "256", "--seed", "4",
                   "--workers", "1")
    assert "12 patients" in text and "oracle" in text and "pmx ingest" in text
    assert load_cohort(out / "manifest.toml", inspect_slides=False).report.ok
    result = CliRunner().invoke(cli, ["demo-data", str(out), "--patients", "12"])
    assert result.exit_code == 2 and "already holds a cohort" in result.output
    _invoke("demo-data", str(out), "--patients", "10", "--slide-size", "256", "--seed", "5", "--workers", "1",
            "--overwrite")
    replaced = load_cohort(out / "manifest.toml", inspect_slides=False)
    assert replaced.report.ok and len(replaced.patients) == 10
    assert "unmatched-ids" not in replaced.report.codes()  # no file of the 12-patient cohort is left
