"""`pmx embed` and plugin encoders: the command, its errors, and the torchrun relaunch."""

from __future__ import annotations

import json
import sys
import types
from typing import ClassVar

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from embed_helpers import SLIDE_FILES, TILER

import pmx
from pmx.cli.main import cli
from pmx.encoders import TileEncoder, TileEncoderConfig


class MeanColour(TileEncoder):
    """Mean of each normalised colour channel (a weightless plugin encoder, 3-d)."""

    name: ClassVar[str] = "test-mean-colour"
    embed_dim: ClassVar[int] = 3
    needs_weights: ClassVar[bool] = False

    class Config(TileEncoderConfig):
        input_size: int = pmx.Field(0, ge=0, description="0 = tiles at their own size")

    def build_module(self) -> torch.nn.Module:
        class Mean(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x.float().mean(dim=(2, 3))

        return Mean()


@pytest.fixture
def plugin_host(fresh_host, monkeypatch):
    """The process-wide host with a third-party plugin module registering MeanColour (and no
    installed entry-point plugins: they are not under test here)."""
    monkeypatch.setenv("PMX_LOAD_PLUGINS", "")
    plugin = types.ModuleType("pmx_test_colour_plugin")

    @pmx.hookimpl
    def pmx_register_encoders(register):
        register(MeanColour)

    plugin.pmx_register_encoders = pmx_register_encoders
    host = pmx.get_host()
    host.register(plugin, "test-colour")
    return host


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["embed", *args], catch_exceptions=False)


def test_plugin_encoder_through_the_cli(plugin_host, store, store_dir, slide_dir, slide_paths):
    from pmx.slides import open_slide
    from pmx.tiling import GridTiler

    result = _invoke(str(slide_dir), "--encoder", "test-mean-colour", "--store", str(store_dir),
                     "--set", "num_workers=0", "--set", "batch_size=5", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["computed"] == 3 and summary["tiles"] == 27 and summary["warnings"] == []
    table = store.read_arrow(summary["table"], columns=["slide_id", "x", "y", "vector"])
    got = {(s, x, y): np.asarray(v) for s, x, y, v in zip(*(table.column(c).to_pylist()
                                                            for c in table.column_names))}
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for sid in SLIDE_FILES:
        with open_slide(slide_paths[sid][0], slide_id=sid) as slide:
            for row in GridTiler(TILER).tile(slide).records.to_pylist():
                pixels = slide.read_box(row["x"], row["y"], row["extent"], row["out_size"])
                expected = (pixels.reshape(-1, 3).mean(0) / 255.0 - mean) / std
                np.testing.assert_allclose(got[(sid, row["x"], row["y"])], expected, rtol=1e-5,
                                           atol=1e-5)
    again = _invoke(str(slide_dir), "--encoder", "test-mean-colour", "--store", str(store_dir))
    assert again.exit_code == 0 and "3 already done" in again.output


@pytest.mark.parametrize("args, message", [
    (["--encoder", "nope"], "no encoder named 'nope'"),
    (["--encoder", "resnet50-trunc"], "has no weights file"),
    (["--encoder", "resnet50-trunc", "--set", "bogus=1"], "unknown key 'bogus'"),
    (["--encoder", "resnet50-trunc", "--set", "encoder.bogus=1"], "unknown key 'bogus'"),
    (["--encoder", "resnet50-trunc", "--set", "encoder.weights=/no/such.safetensors"],
     "/no/such.safetensors .*does not exist"),
])
def test_user_errors_exit_2_with_a_message(args, message, tmp_path, monkeypatch, fresh_host):
    monkeypatch.setenv("PMX_LOAD_PLUGINS", "")  # built-in encoders only
    monkeypatch.delenv("PMX_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("PMX_WEIGHTS_RESNET50_TRUNC", raising=False)
    result = CliRunner().invoke(cli, ["embed", "--store", str(tmp_path / "s"), *args])
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output
    import re

    assert re.search(message, result.output.replace("\n", " ")), result.output


def test_gpus_relaunches_the_same_command_under_torchrun():
    from pmx.cli.embed_cmd import _relaunch_args, torchrun_command

    params = {"slides": (), "encoder_name": "vit-s16", "store_uri": "/s", "tiler": "grid",
              "device": None, "config_file": None, "cohort": None, "mpp_csv": None,
              "sets": ("batch_size=512", "encoder.weights=/w.safetensors"), "force": True,
              "as_json": False, "no_progress": True, "gpus": 8}
    command = torchrun_command(8, _relaunch_args(params))
    assert command[:5] == [sys.executable, "-m", "pmx.torchrun", "--standalone",
                           "--nproc_per_node=8"]
    assert command[5:] == ["-m", "pmx.cli", "embed", "--encoder", "vit-s16", "--store", "/s",
                           "--tiler", "grid", "--set", "batch_size=512", "--set",
                           "encoder.weights=/w.safetensors", "--force", "--no-progress"]
    assert "--gpus" not in command
