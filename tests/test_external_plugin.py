"""A real third-party plugin package, pip-installed (offline) into this environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent / "example_plugin"
PMX = [sys.executable, "-m", "pmx.cli"]


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    source = tmp_path_factory.mktemp("example") / "example_plugin"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "--no-deps", "--no-build-isolation", "--no-index", str(source)],
                   check=True, capture_output=True, text=True)
    yield
    subprocess.run(pip + ["uninstall", "-y", "pmx-example-plugin"], check=True, capture_output=True)


def _pmx_json(*args: str, env_extra: dict[str, str] | None = None):
    env = {k: v for k, v in os.environ.items() if k != "PMX_LOAD_PLUGINS"}
    env.update(env_extra or {})
    out = subprocess.run(PMX + list(args), capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_installed_plugin_appears_in_plugins_and_components(installed_example):
    plugins = {p["name"]: p for p in _pmx_json("plugins", "--json")}
    example = plugins["example"]
    assert example["distribution"] == "pmx-example-plugin"
    assert example["version"] == "0.2.0"
    assert example["builtin"] is False and example["errors"] == []
    components = {(c["kind"], c["name"]): c for c in _pmx_json("components", "--json")}
    assert components[("tiler", "example-center")]["distribution"] == "pmx-example-plugin"
    assert ("method", "example-method") in components


@pytest.mark.parametrize("allow", ["", "pmx-example-plugin", "example", "someone-else"])
def test_allow_list_controls_the_installed_plugin(installed_example, allow):
    plugins = {p["name"] for p in _pmx_json("plugins", "--json", env_extra={"PMX_LOAD_PLUGINS": allow})}
    assert ("example" in plugins) == (allow in {"pmx-example-plugin", "example"})


def test_installed_method_runs(installed_example, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PMX_LOAD_PLUGINS"}
    out = subprocess.run(PMX + ["run", "plugin:example-method", "--preset", "small", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "example-result.json").read_text())["config"]["train"]["epochs"] == 5
