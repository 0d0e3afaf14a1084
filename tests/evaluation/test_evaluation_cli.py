"""`pmx evaluate PREDICTIONS`: scikit-survival's C-index from a file, KM PNG, clear errors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from pmx.cli.main import cli


@pytest.fixture(scope="module")
def predictions():
    from sksurv.datasets import load_veterans_lung_cancer

    X, y = load_veterans_lung_cancer()
    rng = np.random.default_rng(0)
    risk = -X["Karnofsky_score"].to_numpy() / 10 + rng.normal(scale=0.5, size=len(y))
    return pl.DataFrame({
        "patient_id": [f"V{i}" for i in range(len(y))],
        "time": np.ascontiguousarray(y["Survival_in_days"]),
        "event": np.ascontiguousarray(y["Status"]).astype(int),
        "risk": risk,
        "fold": np.arange(len(y)) % 3,
    })


def _reference_c(frame):
    from sksurv.metrics import concordance_index_censored

    return concordance_index_censored(frame["event"].to_numpy().astype(bool), frame["time"].to_numpy(),
                                      frame["risk"].to_numpy())[0]


def test_evaluate_csv_reproduces_sksurv_and_writes_km_png(tmp_path, predictions):
    path = tmp_path / "preds.csv"
    predictions.write_csv(path)
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli, ["evaluate", str(path), "--json", "--out", str(out), "--n-boot", "200"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["c_index"] == pytest.approx(_reference_c(predictions), abs=1e-12)
    assert data["c_index_ci"][0] < data["c_index"] < data["c_index_ci"][1]
    for fold in data["folds"]:
        assert fold["c_index"] == pytest.approx(_reference_c(predictions.filter(pl.col("fold") == fold["fold"])), abs=1e-12)
    assert data["logrank_p"] < 0.05 and data["n_high"] + data["n_low"] == predictions.height
    png = (out / "km.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "metrics.json").read_text())["c_index"] == data["c_index"]
    assert "![Kaplan-Meier curves of the median-risk split](km.png)" in (out / "report.md").read_text()


def test_evaluate_parquet_text_output_and_default_out_dir(tmp_path, predictions):
    path = tmp_path / "scores.parquet"
    predictions.drop("fold").rename({"event": "Status", "risk": "score"}).write_parquet(path)
    result = CliRunner().invoke(cli, ["evaluate", str(path), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert f"Harrell's C   {_reference_c(predictions):.4f}" in result.output
    assert (tmp_path / "scores_evaluation" / "km.png").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.with_columns(pl.when(pl.col("patient_id") == "V3").then(-1.0).otherwise(pl.col("time")).alias("time")),
         "must be > 0.*patient V3"),
        (lambda f: f.with_columns(pl.when(pl.col("patient_id") == "V5").then(None).otherwise(pl.col("risk")).alias("risk")),
         "risk .*NaN.*patient V5"),
        (lambda f: f.with_columns(pl.when(pl.col("patient_id") == "V7").then(2).otherwise(pl.col("event")).alias("event")),
         "must be 0 or 1"),
        (lambda f: f.drop("risk"), "no risk column"),
        (lambda f: f.with_columns(pl.when(pl.col("fold") == 1).then(0).otherwise(pl.col("event")).alias("event")),
         "fold 1 has no event"),
    ],
)
def test_bad_predictions_exit_2_with_a_clear_message(tmp_path, predictions, change, message):
    path = tmp_path / "bad.csv"
    change(predictions).write_csv(path)
    result = CliRunner().invoke(cli, ["evaluate", str(path), "--n-boot", "50"])
    assert result.exit_code == 2
    assert "Error:" in result.output
    import re

    assert re.search(message, result.output), result.output


def test_missing_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "does not exist" in result.output
