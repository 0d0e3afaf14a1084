"""`pmx run plugin:cmta --demo` end to end: demo cohort -> store -> tiles -> embeddings -> CV -> report."""

from __future__ import annotations

import json
import logging
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


STAGE_LINES = {  # the log line each data stage writes ("... cache hit" when it was reused)
    "ingest": "stage ingest (pmx-demo)",
    "tile": "stage tile (grid",
    "embed": "stage embed (resnet50-trunc",
    "folds": "stage folds (",
}


def _stage_lines(caplog) -> dict[str, str]:
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("pmx")]
    return {stage: next((line for line in lines if marker in line), "") for stage, marker in STAGE_LINES.items()}


def assert_second_run_hit_every_cache(tmp_path, caplog, sets: tuple[str, ...]) -> None:
    """Run again on the same store and check both the log lines and lineage.json."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pmx"):
        CMTAMethod(CMTAMethod.resolve_config("tiny", sets=sets)).run(_context(tmp_path, demo=True))
    lines = _stage_lines(caplog)
    for stage, line in lines.items():
        assert line.endswith("cache hit") or "cache hit (" in line, f"stage {stage}: {line or 'no log line'}"
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("cmta-tiny-"))
    second = json.loads((runs[-1] / "lineage.json").read_text())
    assert second["stages"]["ingest"]["cached"] is True
    assert second["stages"]["tile"]["computed"] == 0
    assert second["stages"]["embed"]["computed"] == 0
    assert second["stages"]["folds"]["cached"] is True


SMALL_DEMO = ("demo.patients=24", "demo.slide_size=512", "demo.genes=100", "eval.folds=2", "train.epochs=1")


def test_a_second_run_on_the_same_store_logs_a_cache_hit_for_every_data_stage(tmp_path, caplog):
    """A small demo (24 patients, 512 px slides, 1 epoch): only the stages matter here."""
    with caplog.at_level(logging.INFO, logger="pmx"):
        CMTAMethod(CMTAMethod.resolve_config("tiny", sets=SMALL_DEMO)).run(_context(tmp_path, demo=True))
    first = _stage_lines(caplog)
    assert all(first.values()) and not any("cache hit" in line for line in first.values()), first
    assert_second_run_hit_every_cache(tmp_path, caplog, SMALL_DEMO)


@pytest.mark.slow  # about 3 minutes on a 2-core CPU
@pytest.mark.timeout(900)
def test_demo_run_reaches_the_target_c_index_and_reuses_every_stage(tmp_path, caplog):
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
    assert len(loaded.folds) == config.eval.folds == 5
    n_patients = 0
    for fold in loaded.folds:
        assert math.isfinite(fold.c_index) and 0.0 <= fold.c_index <= 1.0
        assert fold.n_train > 0 and fold.n_val > 0 and fold.n_test > 0
        n_patients += fold.n_test
    # Issue 11's target. Measured (docs/methods/cmta.md, "tiny preset"): 0.682 +/- 0.035 on
    # seed 0; 0.679 and 0.635 on the seed-1 and seed-2 demo cohorts.
    assert results.c_index_mean >= 0.60, f"mean test C-index {results.c_index_mean:.3f}"
    assert raw["config"]["data"]["tile_encoder"] == "resnet50-trunc"
    lineage = json.loads((run_dir / "lineage.json").read_text())
    assert any("random init" in w for w in lineage["warnings"])  # no weights configured: recorded
    assert lineage["bags"]["patients"] == n_patients  # every patient is tested exactly once
    # Each fold selected its epoch on its validation split, inside the selection window.
    first = int(config.eval.select_from * config.train.epochs)
    assert all(first <= f["best_epoch"] < config.train.epochs for f in lineage["folds"])

    # A second run on the same store reuses ingest, tiles, embeddings and folds (1 epoch: only
    # the data stages matter here).
    assert_second_run_hit_every_cache(tmp_path, caplog, ("train.epochs=1",))
