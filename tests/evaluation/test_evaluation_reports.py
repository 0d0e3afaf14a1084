"""Run reports: results.json schema, Markdown table, KM split and log-rank p."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from pmx.errors import DataError
from pmx.evaluation import (
    load_results,
    logrank_p,
    make_folds,
    median_split,
    report_run,
    results_markdown,
)

REQUIRED = {"method", "cohort", "preset", "folds", "c_index_mean", "c_index_std", "logrank_p",
            "config", "versions"}
FOLD_FIELDS = {"fold", "c_index", "n_train", "n_val", "n_test", "events_test"}


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(0)
    n = 150
    ids = [f"P{i:03d}" for i in range(n)]
    signal = rng.normal(size=n)
    event_time = rng.exponential(1.0 / np.exp(signal)) * 500 + 1
    censor = rng.uniform(50, 1500, n)
    time = np.minimum(event_time, censor)
    event = event_time <= censor
    folds = make_folds(ids, event, n_folds=5, seed=0)
    test = folds.filter(pl.col("part") == "test").select("fold", "patient_id")
    index = {p: i for i, p in enumerate(ids)}
    rows = [index[p] for p in test["patient_id"]]
    predictions = test.with_columns(
        pl.Series("time", time[rows]), pl.Series("event", event[rows]),
        pl.Series("risk", signal[rows] + rng.normal(scale=0.5, size=len(rows))),
        pl.lit("test").alias("part"),
    )
    return folds, predictions


def test_report_run_writes_results_json_markdown_and_km(tmp_path, cohort):
    from sksurv.metrics import concordance_index_censored

    folds, predictions = cohort
    fold_metrics = {k: {"uno_c": 0.6 + 0.01 * k} for k in range(5)}
    results = report_run(tmp_path, method="demo", cohort="synthetic", preset="tiny",
                         config={"finetune": {"lr": 1e-4}}, predictions=predictions,
                         splits=folds, fold_metrics=fold_metrics, seed=0)
    data = json.loads((tmp_path / "results.json").read_text())
    assert REQUIRED <= set(data)
    assert len(data["folds"]) == 5 and all(FOLD_FIELDS <= set(f) for f in data["folds"])
    for fold in data["folds"]:
        rows = predictions.filter(pl.col("fold") == fold["fold"])
        reference = concordance_index_censored(rows["event"].to_numpy(), rows["time"].to_numpy(),
                                               rows["risk"].to_numpy())[0]
        assert fold["c_index"] == pytest.approx(reference, abs=1e-12)
        assert fold["n_test"] == rows.height and fold["events_test"] == int(rows["event"].sum())
        assert fold["n_train"] + fold["n_val"] + fold["n_test"] == 150 and fold["n_val"] > 0
    values = np.array([f["c_index"] for f in data["folds"]])
    assert data["c_index_mean"] == pytest.approx(values.mean())
    assert data["c_index_std"] == pytest.approx(values.std())
    assert data["metrics"]["uno_c"]["mean"] == pytest.approx(0.62)
    assert data["config"] == {"finetune": {"lr": 1e-4}}
    assert data["split"] == folds["split"][0]
    assert {"python", "pmx", "torch", "scikit-survival"} <= set(data["versions"])
    assert data["c_index_mean"] > 0.6 and data["logrank_p"] < 0.01
    png = (tmp_path / "km.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    markdown = (tmp_path / "results.md").read_text()
    assert "| mean ± std |" in markdown and f"{data['c_index_mean']:.3f} ± {data['c_index_std']:.3f}" in markdown
    assert load_results(tmp_path) == results
    assert results_markdown(load_results(tmp_path / "results.json")) == markdown


def test_logrank_p_matches_lifelines(cohort):
    from lifelines.statistics import logrank_test

    _, predictions = cohort
    t, e, r = (predictions[c].to_numpy() for c in ("time", "event", "risk"))
    high = median_split(r, predictions["fold"].to_numpy())
    reference = logrank_test(t[high], t[~high], e[high], e[~high]).p_value
    assert logrank_p(t, e, high) == pytest.approx(reference, rel=1e-9)


def test_median_split_is_per_fold():
    risk = np.array([1.0, 2, 3, 4, 100, 200, 300, 400])
    fold = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert median_split(risk, fold).tolist() == [False, False, True, True, False, False, True, True]
    assert median_split(risk).tolist() == [False] * 4 + [True] * 4


def test_report_errors_are_clear(tmp_path, cohort):
    folds, predictions = cohort
    censored = predictions.with_columns(
        pl.when(pl.col("fold") == 2).then(False).otherwise(pl.col("event")).alias("event"))
    with pytest.raises(DataError, match="fold 2 .*no event"):
        report_run(tmp_path, method="m", cohort="c", preset="tiny", config={},
                   predictions=censored, splits=folds)
    with pytest.raises(DataError, match="needs the split"):
        report_run(tmp_path, method="m", cohort="c", preset="tiny", config={}, predictions=predictions)
    with pytest.raises(DataError, match="one group empty"):
        logrank_p([1.0, 2.0], [1, 1], [False, False])
    (tmp_path / "bad.json").write_text(json.dumps({"method": "x"}))
    with pytest.raises(DataError, match="results.json schema"):
        load_results(tmp_path / "bad.json")


def test_fold_metrics_uses_training_part_for_ipcw_and_curves_when_given():
    from sksurv.metrics import concordance_index_ipcw

    from pmx.evaluation import fold_metrics
    from pmx.survival.checks import structured_y

    rng = np.random.default_rng(5)
    n = 300
    risk = rng.normal(size=n)
    time = rng.exponential(1.0 / np.exp(risk)) * 300 + 1
    event = rng.random(n) < 0.7
    train, test = slice(0, 200), slice(200, None)
    grid = np.linspace(1, np.quantile(time[train], 0.95), 30)
    surv = np.exp(-np.exp(risk[test])[:, None] * grid[None, :] / 300)
    metrics = fold_metrics(time[train], event[train], time[test], event[test], risk[test], surv=surv, time_grid=grid)
    reference = concordance_index_ipcw(structured_y(time[train], event[train]),
                                       structured_y(time[test], event[test]), risk[test], tau=time[train].max())[0]
    assert metrics["uno_c"] == pytest.approx(reference, abs=1e-12)
    assert metrics["auc_mean"] > 0.6 and metrics["antolini_c"] > 0.6 and 0 < metrics["ibs"] < 0.25
    assert set(fold_metrics(time[train], event[train], time[test], event[test], risk[test])) == {"uno_c", "auc_mean"}
