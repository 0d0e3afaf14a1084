"""`pmx run plugin:cmta --demo` end to end: demo cohort -> store -> tiles -> embeddings -> CV -> report."""

from __future__ import annotations

import json
import math

import pytest

import pmx
from pmx_cmta import CMTAMethod


def _context(tmp_path, **kw):
    return pmx.RunContext(method="cmta", preset="tiny", store=str(tmp_path / "store"),
                          out_dir=tmp_path / "runs", seed=0, device="cpu", **kw)


def test_run_without_a_cohort_says_how_to_give_one(tmp_path):
    method = CMTAMethod(CMTAMethod.resolve_config("tiny"))
    with pytest.raises(pmx.ConfigError, match="--cohort DIR"):
        method.run(_context(tmp_path))


def test_run_with_a_folder_without_manifest_names_it(tmp_path):
    method = CMTAMethod(CMTAMethod.resolve_config("tiny"))
    with pytest.raises(pmx.PmxError, match="manifest.toml"):
        method.run(_context(tmp_path, cohort=tmp_path))


@pytest.mark.slow  # about 3 minutes on a 2-core CPU
@pytest.mark.timeout(900)
def test_demo_run_writes_results_with_a_finite_c_index_per_fold(tmp_path):
    from pmx.evaluation import load_results

    config = CMTAMethod.resolve_config("tiny")
    results = CMTAMethod(config).run(_context(tmp_path, demo=True))

    run_dirs = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("cmta-tiny-")]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    loaded = load_results(run_dir)  # validates the documented schema (docs/results.md)
    raw = json.loads((run_dir / "results.json").read_text())
    for key in ("schema_version", "method", "cohort", "preset", "folds", "c_index_mean", "c_index_std",
                "config", "versions", "logrank_p"):
        assert key in raw
    assert raw["method"] == "cmta" and raw["preset"] == "tiny"
    assert len(loaded.folds) == config.eval.folds
    n_patients = 0
    for fold in loaded.folds:
        assert math.isfinite(fold.c_index) and 0.0 <= fold.c_index <= 1.0
        assert fold.n_train > 0 and fold.n_val > 0 and fold.n_test > 0
        n_patients += fold.n_test
    assert math.isfinite(results.c_index_mean)
    # Beats chance by a margin. Issue 11's target is >= 0.60: `pmx run plugin:cmta --demo` gave
    # 0.599 on a fresh store when written (see docs/methods/cmta.md, "Running").
    assert results.c_index_mean > 0.55, f"mean test C-index {results.c_index_mean:.3f}"
    assert raw["config"]["data"]["tile_encoder"] == "resnet50-trunc"
    lineage = json.loads((run_dir / "lineage.json").read_text())
    assert any("random init" in w for w in lineage["warnings"])  # no weights configured: recorded
    assert lineage["bags"]["patients"] == n_patients  # every patient is tested exactly once
    # Each fold selected its epoch on its validation split; the test fold was never scored there.
    assert all(f["best_epoch"] >= 0 for f in lineage["folds"])

    # A second run on the same store reuses ingest, tiles and embeddings (1 epoch: only the
    # data stages matter here).
    short = CMTAMethod.resolve_config("tiny", sets=["train.epochs=1"])
    CMTAMethod(short).run(_context(tmp_path, demo=True))
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("cmta-tiny-"))
    second = json.loads((runs[-1] / "lineage.json").read_text())
    assert second["stages"]["ingest"]["cached"] is True
    assert second["stages"]["tile"]["computed"] == 0
    assert second["stages"]["embed"]["computed"] == 0
