"""`pmx run plugin:contramae` end to end on a small demo cohort: stages, cache hits, outputs, and
each ablation switch (it runs, and changes what it should)."""

from __future__ import annotations

import json
import logging
import math

import pytest
from contramae_testutils import run_small

import pmx
from pmx_contramae import ContraMAEMethod


@pytest.fixture(scope="module")
def shared(tmp_path_factory, small_cohort):
    """One base run into a store shared by this module's runs (their data stages are cache hits)."""
    root = tmp_path_factory.mktemp("contramae-run")
    results, run_dir, lineage = run_small(root, small_cohort.manifest)
    return {"root": root, "store": root / "store", "manifest": small_cohort.manifest, "results": results,
            "run_dir": run_dir, "lineage": lineage}


def _again(shared, tmp_path, *sets):
    return run_small(tmp_path, shared["manifest"], *sets, store=shared["store"])


def _metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_run_without_a_cohort_says_how_to_give_one(tmp_path):
    method = ContraMAEMethod(ContraMAEMethod.resolve_config("tiny"))
    context = pmx.RunContext(method="contramae", preset="tiny", store=str(tmp_path / "store"), out_dir=tmp_path)
    with pytest.raises(pmx.ConfigError, match="--cohort DIR"):
        method.run(context)


def test_run_writes_results_folds_and_per_fold_trainer_records(shared):
    from pmx.evaluation import load_results

    run_dir, lineage, results = shared["run_dir"], shared["lineage"], shared["results"]
    loaded = load_results(run_dir)
    raw = json.loads((run_dir / "results.json").read_text())
    assert raw["method"] == "contramae" and raw["preset"] == "tiny"
    assert len(loaded.folds) == 3 and math.isfinite(results.c_index_mean)
    assert "oracle_c_index" in json.dumps(raw)  # the demo ceiling is reported next to the result
    assert {"km.png", "results.md", "predictions.csv", "lineage.json"} <= {p.name for p in run_dir.iterdir()}
    # every usable patient is tested exactly once; the others were dropped with a warning
    assert sum(f.n_test for f in loaded.folds) == lineage["patients"]
    assert lineage["patients"] + sum(lineage["dropped"].values()) == 40
    assert any("region" in reason for reason in lineage["dropped"])
    assert any(m in reason for reason in lineage["dropped"] for m in ("rna", "mirna", "methylation"))
    assert any("patient(s) dropped" in w and "e.g. TCGA-" in w for w in lineage["warnings"])
    assert lineage["stages"]["ingest"]["cached"] is False
    assert lineage["stages"]["tile"]["computed"] == lineage["stages"]["tile"]["slides"] > 0
    assert lineage["stages"]["regions"]["shape"][1:] == [3, 64, 64]
    assert lineage["stages"]["select"]["cached"] == 0 and lineage["stages"]["select"]["top_k"] == 8
    for fold in range(3):
        pre, ft = run_dir / f"fold{fold}" / "pretrain", run_dir / f"fold{fold}" / "finetune"
        assert {"pgc", "gr", "pr"} <= {k[len("train_"):] for k in _metrics(pre / "metrics.jsonl")[0]}
        init = json.loads((ft / "init.json").read_text())
        assert init["source"].endswith("pretrain/model.safetensors")
        assert init["loaded"] > 0 and not any(k.startswith("backbone.") for k in init["missing"])
        assert "val_c_index" in _metrics(ft / "metrics.jsonl")[0]  # selection on the validation split
        assert not (pre / "checkpoints").exists()  # runtime.keep_checkpoints=false


def test_rerun_reuses_ingest_regions_folds_and_selection(shared, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pmx"):
        _, _, lineage = _again(shared, tmp_path, "pretrain.epochs=0")
    assert lineage["stages"]["ingest"]["cached"] is True
    assert lineage["stages"]["tile"]["computed"] == 0
    assert lineage["stages"]["folds"]["cached"] is True
    assert lineage["stages"]["select"]["cached"] == 3
    text = caplog.text
    assert "stage tile" in text and "cache hit" in text


def test_from_scratch_skips_pretraining(shared, tmp_path):
    _, run_dir, lineage = _again(shared, tmp_path, "pretrain.epochs=0")
    assert all(f["pretrain"] is None and f["finetune"]["init_from"] is None for f in lineage["folds"])
    assert not (run_dir / "fold0" / "pretrain").exists()
    assert not (run_dir / "fold0" / "finetune" / "init.json").exists()


def test_pretraining_scope_adds_the_validation_split_never_the_test_fold(shared, tmp_path):
    _, _, lineage = _again(shared, tmp_path, "eval.pretrain_scope=train-val")
    base = {f["fold"]: f["pretrain"]["patients"] for f in shared["lineage"]["folds"]}
    sizes = {r.fold: (r.n_train, r.n_val) for r in shared["results"].folds}
    for fold in lineage["folds"]:
        n_train, n_val = sizes[fold["fold"]]
        assert base[fold["fold"]] == n_train
        assert fold["pretrain"]["patients"] == n_train + n_val


@pytest.mark.parametrize("sets, losses", [
    (("objectives.gr=false", "objectives.pr=false"), {"pgc"}),
    (("objectives.pgc=false",), {"gr", "pr"}),
    (("objectives.pgc=false", "objectives.pr=false"), {"gr"}),
])
def test_single_objectives_train_only_those_losses(shared, tmp_path, sets, losses):
    _, run_dir, lineage = _again(shared, tmp_path, *sets)
    names = {k[len("train_"):] for k in _metrics(run_dir / "fold0" / "pretrain" / "metrics.jsonl")[0]
             if k.startswith("train_")} - {"loss"}
    assert names == losses
    assert set(lineage["folds"][0]["pretrain"]["last"]) - {"loss"} == losses


def test_omics_only_skips_the_slides_and_trains_without_images(shared, tmp_path):
    results, run_dir, lineage = _again(shared, tmp_path, "modalities=omics")
    assert lineage["stages"]["tile"].startswith("skipped") and "regions" not in lineage["stages"]
    assert lineage["bank"]["images"] is None
    # patients without a usable slide are kept now: only omics are required
    assert lineage["patients"] > shared["lineage"]["patients"]
    assert not any("region" in reason for reason in lineage["dropped"])
    names = {k for k in _metrics(run_dir / "fold0" / "pretrain" / "metrics.jsonl")[0] if k.startswith("train_")}
    assert names == {"train_gr", "train_loss"}  # PGC and PR need the image
    assert math.isfinite(results.c_index_mean)


def test_pathology_only_skips_selection_and_trains_without_omics(shared, tmp_path):
    results, run_dir, lineage = _again(shared, tmp_path, "modalities=pathology")
    assert lineage["stages"]["select"].startswith("skipped")
    names = {k for k in _metrics(run_dir / "fold0" / "pretrain" / "metrics.jsonl")[0] if k.startswith("train_")}
    assert names == {"train_pr", "train_loss"}
    assert math.isfinite(results.c_index_mean)
    # the fine-tuning head sees one pooled part (the image's)
    from safetensors.torch import load_file

    weights = load_file(run_dir / "fold0" / "finetune" / "model.safetensors")
    assert weights["head.linear.weight"].shape[-1] == 16


def test_too_few_patients_is_a_data_error_naming_the_fix(shared, tmp_path):
    with pytest.raises(pmx.DataError, match="eval.folds"):
        _again(shared, tmp_path, "eval.folds=20")


def test_two_processes_under_torchrun_on_cpu(small_cohort, tmp_path):
    """`pmx run ... --gpus 2 --device cpu`: the CLI relaunches itself under torchrun (gloo);
    both ranks share the data stages through the store, train with DDP, and rank 0 alone
    reports: one run directory, every patient tested once, each progress line logged once."""
    import subprocess
    import sys

    from contramae_testutils import FAST_SETS

    from pmx.evaluation import load_results

    sets = [arg for s in FAST_SETS for arg in ("--set", s)]
    command = [sys.executable, "-m", "pmx.cli", "run", "plugin:contramae", "--cohort",
               str(small_cohort.root), "--preset", "tiny", "--gpus", "2", "--device", "cpu",
               "--store", str(tmp_path / "store"), "--out", str(tmp_path / "runs"), *sets]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").glob("contramae-tiny-*")
    results = load_results(run_dir)
    lineage = json.loads((run_dir / "lineage.json").read_text())
    assert len(results.folds) == 3 and math.isfinite(results.c_index_mean)
    assert sum(f.n_test for f in results.folds) == lineage["patients"]
    assert proc.stderr.count("fold 0 (1 of 3)") == 1  # rank 1 logs warnings only
    rank1 = [line for line in proc.stderr.splitlines() if "[rank 1]" in line]
    assert all(" WARNING " in line or " ERROR " in line for line in rank1), rank1[:3]
