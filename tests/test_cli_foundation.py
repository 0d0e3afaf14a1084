"""The foundation CLI: --version, plugins, components, doctor, run resolution."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
from click.testing import CliRunner

import pmx
from pmx.cli.main import cli

PMX = [sys.executable, "-m", "pmx.cli"]


def _example_host_plugin():
    """Register the example plugin's module in-process (the installed variant is tested too)."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "example_plugin"))
    try:
        import pmx_example_plugin
    finally:
        sys.path.pop(0)
    pmx.get_host().register(pmx_example_plugin, "example-inmemory")
    return pmx_example_plugin


@pytest.fixture
def runner(fresh_host):
    return CliRunner()


def test_version_is_fast_and_correct():
    out = subprocess.run(PMX + ["--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"pmx, version {pmx.__version__}"


def test_plugins_and_components_json(runner):
    _example_host_plugin()
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    plugins = {p["name"]: p for p in json.loads(result.output)}
    example = plugins["example-inmemory"]
    assert {"kind": "tiler", "name": "example-center"} in example["components"]
    assert sorted(example["hooks"]) == ["pmx_register_methods", "pmx_register_tilers"]

    result = runner.invoke(cli, ["components", "--kind", "tiler", "--json"])
    described = {c["name"]: c for c in json.loads(result.output)}
    fields = {f["name"]: f for f in described["example-center"]["config"]}
    assert fields["size"] == {"name": "size", "type": "int", "default": 256,
                              "doc": "tile edge in pixels at level 0"}
    assert described["example-center"]["plugin"] == "example-inmemory"


def test_components_text_output(runner):
    _example_host_plugin()
    result = runner.invoke(cli, ["components", "--kind", "method"])
    assert "method:example-method v1  [example-inmemory]" in result.output
    assert "train.epochs (int, default 2): passes over the training fold" in result.output


def test_run_unknown_method_lists_available(runner):
    _example_host_plugin()
    result = runner.invoke(cli, ["run", "plugin:does-not-exist"])
    assert result.exit_code == 2
    assert "no method 'does-not-exist'" in result.output
    assert "plugin:example-method" in result.output


def test_run_unknown_method_subprocess_exits_nonzero():
    out = subprocess.run(PMX + ["run", "plugin:does-not-exist"], capture_output=True, text=True)
    assert out.returncode != 0
    assert "Available methods:" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_print_config_presets_and_sets(runner, tmp_path):
    _example_host_plugin()
    result = runner.invoke(cli, ["run", "plugin:example-method", "--preset", "paper",
                                 "--set", "train.lr=0.01", "--print-config", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"tiler": "example-center", "train": {"epochs": 30, "lr": 0.01}}
    toml_out = runner.invoke(cli, ["run", "plugin:example-method", "--print-config"]).output
    assert "[train]\nepochs = 1\nlr = 0.001" in toml_out
    bad = runner.invoke(cli, ["run", "plugin:example-method", "--set", "train.epoch=3"])
    assert bad.exit_code == 2 and "unknown key 'train.epoch'; did you mean 'train.epochs'?" in bad.output
    assert "`pmx components method example-method`" in bad.output
    bad = runner.invoke(cli, ["run", "plugin:example-method", "--set", "train.speed=3"])
    assert bad.exit_code == 2 and "valid keys here: epochs, lr" in bad.output


def test_run_by_plugin_name_and_dry_run(runner, tmp_path):
    _example_host_plugin()
    result = runner.invoke(cli, ["run", "plugin:example-inmemory", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "example-result.json").read_text())
    assert written["preset"] == "tiny" and written["config"]["train"]["epochs"] == 1
    dry = runner.invoke(cli, ["run", "plugin:example-method", "--dry-run", "--json"])
    assert json.loads(dry.output) == {"parameters": 0, "tiler": "example-center"}


def test_gpus_is_refused_for_a_single_process_method(runner, tmp_path):
    _example_host_plugin()
    result = runner.invoke(cli, ["run", "plugin:example-method", "--gpus", "2", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "method 'example-method' trains in one process, so --gpus 2 would run 2 copies" in result.output
    assert not any(tmp_path.iterdir())  # nothing ran


def test_doctor_reports_everything_required(runner):
    result = runner.invoke(cli, ["doctor", "--json"])
    report = json.loads(result.output)
    assert set(report["required"]) >= {"torch", "openslide", "lancedb", "timm"}
    assert all(item["ok"] for item in report["required"].values()), report["required"]
    assert report["required"]["openslide"]["library"]
    assert "torch_tensorrt" in report["optional"]
    assert result.exit_code == (1 if report["problems"] else 0)


def test_doctor_fails_on_broken_plugin(runner):
    broken = types.ModuleType("broken_for_doctor")

    @pmx.hookimpl
    def pmx_register_heads(register):
        raise RuntimeError("no heads today")

    broken.pmx_register_heads = pmx_register_heads
    pmx.get_host().register(broken, "broken-for-doctor")
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert "plugin broken-for-doctor" in result.output and "no heads today" in result.output
    shown = runner.invoke(cli, ["plugins"])
    assert "no heads today" in shown.output


def test_components_kind_and_name_arguments(runner):
    _example_host_plugin()
    one = runner.invoke(cli, ["components", "method", "example-method", "--json"])
    assert one.exit_code == 0, one.output
    (described,) = json.loads(one.output)
    assert (described["kind"], described["name"]) == ("method", "example-method")
    assert [f["name"] for f in described["config"]] == ["tiler", "train.epochs", "train.lr"]
    text = runner.invoke(cli, ["components", "tiler", "example-center"])
    assert text.output.startswith("tiler:example-center v1  [example-inmemory]")
    missing = runner.invoke(cli, ["components", "method", "nope"])
    assert missing.exit_code == 2 and "no method named 'nope'" in missing.output
    assert "example-method" in missing.output
    clash = runner.invoke(cli, ["components", "tiler", "--kind", "method"])
    assert clash.exit_code == 2 and "two kinds given" in clash.output


def test_broken_path_registration_is_reported_by_check_and_components(runner):
    broken = types.ModuleType("broken_path_plugin")

    @pmx.hookimpl
    def pmx_register_heads(register):
        register("pmx_no_such_module_for_cli:Head", name="ghost-head")

    broken.pmx_register_heads = pmx_register_heads
    pmx.get_host().register(broken, "broken-path")
    listed = runner.invoke(cli, ["plugins", "--json"])
    assert {p["name"]: p for p in json.loads(listed.output)}["broken-path"]["errors"] == []
    checked = runner.invoke(cli, ["plugins", "--check", "--json"])
    (error,) = {p["name"]: p for p in json.loads(checked.output)}["broken-path"]["errors"]
    assert "'pmx_no_such_module_for_cli:Head'" in error and "ModuleNotFoundError" in error
    heads = runner.invoke(cli, ["components", "head"])
    assert heads.exit_code == 0
    assert "head:cox v1  [pmx.survival.plugin]" in heads.output  # the others are still listed
    assert "! plugin 'broken-path'" in heads.output
    one = runner.invoke(cli, ["components", "head", "ghost-head"])
    assert one.exit_code == 2 and "ModuleNotFoundError" in one.output
