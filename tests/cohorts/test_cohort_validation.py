"""The validation report: each problem is an error or a warning naming patients and files, and an
ingest with errors writes nothing."""

from __future__ import annotations

import pytest
from _cohort_inputs import PATIENTS, write_cohort_folder
from click.testing import CliRunner

from pmx.cli.main import cli
from pmx.cohorts import CohortValidationError, ingest, load_cohort


def _load(tmp_path, testdata, **problem):
    return load_cohort(write_cohort_folder(tmp_path / "cohort", testdata, **problem))


def test_clean_cohort_links_everything(tmp_path, testdata):
    cohort = _load(tmp_path, testdata)
    assert cohort.report.ok, cohort.report.format()
    assert cohort.patient_ids == sorted(PATIENTS)
    assert set(cohort.slides["patient_id"]) == set(PATIENTS[:2])
    slide = cohort.slides.set_index("patient_id").loc[PATIENTS[0]]
    assert slide["vendor"] == "aperio" and slide["mpp"] == pytest.approx(0.499)
    assert slide["width"] == 2220 and slide["magnification"] == 20
    rna = cohort.omics["rna"]
    assert rna.patients == sorted(PATIENTS[:3])
    assert rna.samples[0] == f"{PATIENTS[0]}-01A-11R-A000-07"  # the 11A normal sample was not chosen
    assert "duplicate-samples" in cohort.report.codes("warning")
    assert cohort.report.find("duplicate-samples")[0].patients == [PATIENTS[0]]
    assert cohort.omics["methylation"].kind == "beta" and len(cohort.omics["methylation"].patients) == 4


def test_duplicate_patient_identical_is_a_warning(tmp_path, testdata):
    cohort = _load(tmp_path, testdata, duplicate_patient="same")
    assert cohort.report.ok
    assert cohort.report.find("duplicate-patient")[0].level == "warning"
    assert cohort.patient_ids.count(PATIENTS[0]) == 1


def test_duplicate_patient_conflicting_is_an_error(tmp_path, testdata):
    cohort = _load(tmp_path, testdata, duplicate_patient="conflict")
    [finding] = cohort.report.find("duplicate-patient")
    assert finding.level == "error" and finding.patients == [PATIENTS[0]]
    assert finding.files and finding.files[0].endswith("clinical.csv")


def test_missing_survival_drops_the_patient_with_a_warning(tmp_path, testdata):
    cohort = _load(tmp_path, testdata, missing_survival=True)
    assert cohort.report.ok
    assert cohort.report.find("missing-survival")[0].patients == ["TCGA-CC-0005"]
    assert "TCGA-CC-0005" not in cohort.patient_ids


@pytest.mark.parametrize(
    "problem, code, patient, file_part",
    [
        ({"missing_slide_file": True}, "missing-slide-file", PATIENTS[2], "nowhere.svs"),
        ({"broken_slide": True}, "unreadable-slide", PATIENTS[3], "broken.svs"),
        ({"negative_counts": True}, "negative-counts", PATIENTS[1], "TCGA-AA-0002-01A"),
        ({"non_numeric": True}, "non-numeric", PATIENTS[2], "TCGA-BB-0003-01A"),
        ({"beta_out_of_range": True}, "beta-out-of-range", PATIENTS[1], "methylation.csv"),
    ],
)
def test_errors_name_patients_and_files(tmp_path, testdata, problem, code, patient, file_part):
    cohort = _load(tmp_path, testdata, **problem)
    assert not cohort.report.ok
    [finding] = cohort.report.find(code)
    assert finding.level == "error"
    assert patient in finding.patients
    assert any(file_part in f for f in finding.files), finding.files
    assert code in cohort.report.format()


def test_ids_not_in_the_clinical_table(tmp_path, testdata):
    cohort = _load(tmp_path, testdata, unknown_omics_patient=True)
    assert cohort.report.ok
    [finding] = cohort.report.find("unmatched-ids")
    assert finding.level == "warning" and finding.patients == ["TCGA-ZZ-9999"]
    assert "TCGA-ZZ-9999" not in cohort.omics["rna"].patients


def test_no_id_matches_is_an_error(tmp_path, testdata):
    manifest = write_cohort_folder(tmp_path / "cohort", testdata)
    clinical = manifest.parent / "clinical.csv"
    clinical.write_text(clinical.read_text().replace("TCGA-", "PT-"))
    cohort = load_cohort(manifest)
    assert "ids-do-not-match" in cohort.report.codes("error")


def test_ingest_with_errors_writes_nothing(tmp_path, testdata, store_dir):
    from pmx.featurestore import open_store

    good = write_cohort_folder(tmp_path / "good", testdata)
    ingest(good, store_dir)
    store = open_store(store_dir)
    before = {t: store.count(t) for t in ("patients", "slides", "omics")}
    versions = store.versions(["patients", "slides", "omics"])
    bad = write_cohort_folder(tmp_path / "bad", testdata, negative_counts=True, duplicate_patient="conflict")
    with pytest.raises(CohortValidationError) as caught:
        ingest(bad, store_dir)
    assert "nothing was written" in str(caught.value)
    assert {"negative-counts", "duplicate-patient"} <= set(caught.value.report.codes("error"))
    assert {t: store.count(t) for t in before} == before
    assert store.versions(["patients", "slides", "omics"]) == versions


def test_cli_check_and_failing_ingest(tmp_path, testdata, store_dir):
    bad = write_cohort_folder(tmp_path / "bad", testdata, broken_slide=True)
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(bad), "--check"])
    assert result.exit_code == 2
    assert "unreadable-slide" in result.output and "broken.svs" in result.output
    result = runner.invoke(cli, ["ingest", str(bad), "--store", str(store_dir)])
    assert result.exit_code == 2
    assert "nothing was written" in result.output and PATIENTS[3] in result.output
    assert not store_dir.exists() or not any(store_dir.iterdir())
