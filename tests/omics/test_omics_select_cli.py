"""``pmx select``: files in, per-fold report out, cache in the store, clear errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pmx.cli.main import cli
from pmx.omics.synthetic import make_synthetic_omics


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("select")
    data = make_synthetic_omics(n_patients=40, n_genes=60, n_methylation=40, n_planted=5, seed=6)
    data.omics["rna"].rename_axis("patient_id").to_csv(root / "rna.csv")
    # methylation as probes x patients (the other orientation), tab-separated
    data.omics["methylation"].T.rename_axis("probe").to_csv(root / "methylation.tsv", sep="\t")
    clinical = data.survival.rename_axis("patient_id").reset_index()
    clinical["event"] = clinical["event"].astype(int)
    clinical.to_csv(root / "clinical.csv", index=False)
    return root, data


def _args(root, *extra):
    return ["select", "--store", str(root / "store"), "--omics", f"rna={root / 'rna.csv'}",
            "--omics", f"methylation={root / 'methylation.tsv'}", "--clinical", str(root / "clinical.csv"),
            "--folds", "2", *extra]


def test_quantile_normal_report_and_cache(files):
    root, data = files
    runner = CliRunner()
    args = _args(root, "--selector", "quantile-normal", "--set", "patch_size=8", "--set", "patch_sizes={}",
                 "--json", "--report", str(root / "report.md"))
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["selector"] == "quantile-normal" and report["config"]["patch_size"] == 8
    assert [f["fold"] for f in report["folds"]] == [0, 1]
    assert not any(f["cached"] for f in report["folds"])
    assert report["folds"][0]["groups"]["methylation"]["selected"] == 40
    assert report["folds"][0]["groups"]["rna"]["width"] % 8 == 0
    text = (root / "report.md").read_text()
    assert "## Fold 0" in text and "### rna" in text and "GENE" in text

    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert all(f["cached"] for f in json.loads(again.stdout)["folds"])


def test_deseq2_rsf_table_output(files):
    root, _ = files
    result = CliRunner().invoke(cli, _args(
        root, "--selector", "deseq2-rsf", "--modality", "rna", "--set", "top_k=5", "--set", "n_estimators=10",
        "--set", "de_max_features=30", "--no-store"))
    assert result.exit_code == 0, result.output
    assert "pydeseq2-wald" in result.stdout and "OOB C" in result.stdout
    assert "selected in every fold: rna" in result.stdout
    assert "methylation" not in result.stdout


def test_bad_input_exits_2_with_a_message(files, tmp_path):
    root, data = files
    bad = data.omics["rna"].astype(float)
    bad.iloc[2, 3] = 1.5
    bad.rename_axis("patient_id").to_csv(tmp_path / "rna.csv")
    runner = CliRunner()
    result = runner.invoke(cli, ["select", "--selector", "deseq2-rsf", "--no-store", "--omics",
                                 f"rna={tmp_path / 'rna.csv'}", "--clinical", str(root / "clinical.csv")])
    assert result.exit_code == 2
    assert "integer read counts" in result.output and "P0002" in result.output
    result = runner.invoke(cli, ["select", "--selector", "nope", "--no-store", "--omics",
                                 f"rna={root / 'rna.csv'}", "--clinical", str(root / "clinical.csv")])
    assert result.exit_code == 2 and "no selector named 'nope'" in result.output
    result = runner.invoke(cli, ["select", "--selector", "deseq2-rsf", "--no-store", "--omics",
                                 f"rna={root / 'rna.csv'}"])
    assert result.exit_code == 2 and "--clinical" in result.output
    result = runner.invoke(cli, ["select", "--selector", "deseq2-rsf", "--set", "top_k=-1", "--no-store",
                                 "--omics", f"rna={root / 'rna.csv'}", "--clinical", str(root / "clinical.csv")])
    assert result.exit_code == 2 and "top_k" in result.output
