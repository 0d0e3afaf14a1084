"""``pmx select --cohort NAME`` on a store holding two ingested cohorts uses only that cohort."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pmx.cli.main import cli
from pmx.cohorts import DemoSettings, generate_demo_cohort, ingest
from pmx.cohorts.manifest import load_manifest
from pmx.evaluation.splits import load_folds
from pmx.featurestore import open_store, read_omics


@pytest.fixture(scope="module")
def two_cohort_store(tmp_path_factory):
    """Demo cohorts of two seeds (disjoint patients) ingested as demo-a and demo-b."""
    root = tmp_path_factory.mktemp("select_cohort")
    patients = {}
    for name, size, seed in (("demo-a", 10, 0), ("demo-b", 12, 1)):
        demo = generate_demo_cohort(root / name, DemoSettings(
            patients=size, seed=seed, slide_size=256, genes=100, mirnas=100, cpgs=100, workers=1), progress=False)
        manifest = load_manifest(demo.manifest).model_copy(update={"name": name})
        ingest(manifest, root / "store")
        patients[name] = sorted(demo.patients)
    assert not set(patients["demo-a"]) & set(patients["demo-b"])
    return root / "store", patients


def _select(store, *extra):
    return CliRunner().invoke(cli, ["select", "--store", str(store), "--selector", "quantile-normal",
                                    "--set", "patch_size=8", "--set", "patch_sizes={}", "--modality", "rna",
                                    "--folds", "2", "--json", *extra])


def test_select_cohort_uses_only_that_cohorts_patients(two_cohort_store, tmp_path, monkeypatch):
    store_dir, patients = two_cohort_store
    monkeypatch.chdir(tmp_path)  # no file or folder named demo-b here: it names the store's cohort
    result = _select(store_dir, "--cohort", "demo-b")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"].endswith("cohort demo-b")
    assert sum(f["n_train"] for f in report["folds"]) < len(patients["demo-b"])  # train parts only
    store = open_store(store_dir)
    folds = load_folds(store, report["split"])
    assert sorted(set(folds["patient_id"].to_list())) == patients["demo-b"]
    for fold in report["folds"]:  # each fold's vectors: exactly demo-b's patients
        vectors = read_omics(store, modality="rna", source=fold["key"], fold=fold["fold"])
        assert sorted(vectors.patient_ids) == patients["demo-b"]

    everyone = _select(store_dir)  # without --cohort: both cohorts (and a warning)
    assert everyone.exit_code == 0, everyone.output
    split = json.loads(everyone.stdout)["split"]
    assert sorted(set(load_folds(store, split)["patient_id"].to_list())) == sorted(
        patients["demo-a"] + patients["demo-b"])


def test_select_unknown_cohort_names_the_store_cohorts(two_cohort_store, tmp_path, monkeypatch):
    store_dir, _ = two_cohort_store
    monkeypatch.chdir(tmp_path)
    result = _select(store_dir, "--cohort", "demo-c")
    assert result.exit_code == 2
    assert "no patients of cohort 'demo-c'" in result.output and "demo-a, demo-b" in result.output
    result = _select(store_dir, "--cohort", "demo-b", "--no-store")
    assert result.exit_code == 2 and "drop --no-store" in result.output
    result = _select(store_dir, "--cohort", "missing/cohort.toml")  # a path: read as a manifest
    assert result.exit_code == 2 and "missing/cohort.toml does not exist" in result.output
