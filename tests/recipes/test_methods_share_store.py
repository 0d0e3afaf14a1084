"""Issue 11: CMTA and ContraMAE on one cohort and one store share the ingested rows and the
folds; the second run's log names the stages that were cache hits."""

from __future__ import annotations

import json
import logging

import pytest

import pmx

pytest.importorskip("pmx_cmta")
pytest.importorskip("pmx_contramae")

EVAL = ["eval.folds=3", "eval.val_fraction=0.2"]
CONTRAMAE_FAST = [
    "data.region_size=64", "data.magnification=10", "data.stride=8", "data.top_k=8",
    "data.selector_options.n_estimators=20",
    "model.image_size=32", "model.patch_size=4", "model.omics_dim=8", "model.embed_dim=16",
    "model.num_heads=2", "model.decoder_dim=8", "model.decoder_heads=2",
    "pretrain.epochs=1", "pretrain.batch_size=8", "finetune.epochs=1", "finetune.batch_size=8",
    "pretrain.progress=false", "finetune.progress=false", *EVAL,
]
CMTA_FAST = ["train.epochs=1", "data.encoder_input_size=32", *EVAL]


def _run(method_cls, name, sets, root, manifest):
    config = method_cls.resolve_config("tiny", sets=sets)
    out = root / "runs"
    context = pmx.RunContext(method=name, preset="tiny", store=str(root / "store"), out_dir=out,
                             cohort=manifest, seed=0, device="cpu")
    before = set(out.glob(f"{name}-tiny-*")) if out.exists() else set()
    method_cls(config).run(context)
    (run_dir,) = set(out.glob(f"{name}-tiny-*")) - before
    return json.loads((run_dir / "lineage.json").read_text()), run_dir


def test_second_method_reuses_ingest_and_folds(tmp_path, caplog):
    import polars as pl
    import torch
    from pmx.cohorts import DemoSettings, generate_demo_cohort
    from pmx_cmta import CMTAMethod
    from pmx_contramae import ContraMAEMethod

    torch.set_num_threads(1)
    demo = generate_demo_cohort(tmp_path / "cohort", DemoSettings(
        patients=30, seed=2, slide_size=512, genes=100, mirnas=100, cpgs=100, workers=1), progress=False)
    first, first_dir = _run(ContraMAEMethod, "contramae", CONTRAMAE_FAST, tmp_path, demo.manifest)
    assert first["stages"]["ingest"]["cached"] is False
    assert first["stages"]["folds"]["cached"] is False
    with caplog.at_level(logging.INFO, logger="pmx"):
        second, second_dir = _run(CMTAMethod, "cmta", CMTA_FAST, tmp_path, demo.manifest)
    assert second["stages"]["ingest"]["cached"] is True
    assert second["stages"]["folds"]["cached"] is True
    assert second["stages"]["folds"]["split"] == first["stages"]["folds"]["split"]
    assert "stage ingest (" in caplog.text and "stage folds (" in caplog.text
    assert caplog.text.count("cache hit") >= 2
    # the same patients sit in the same test fold in both runs
    a = pl.read_csv(first_dir / "predictions.csv").select("patient_id", "fold")
    b = pl.read_csv(second_dir / "predictions.csv").select("patient_id", "fold")
    joined = a.join(b, on="patient_id", suffix="_cmta")
    assert joined.height >= 20 and (joined["fold"] == joined["fold_cmta"]).all()
