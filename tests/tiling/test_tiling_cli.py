"""``pmx slide info`` and ``pmx tile`` through the real click app (in process)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import pmx.plugins
from pmx.cli.main import cli


@pytest.fixture
def tiling_host(monkeypatch):
    """A plugin host with only the built-in tilers (keeps these tests free of torch imports)."""
    host = pmx.plugins.load_host(entry_points=[], builtins=["pmx.tiling.builtin"])
    monkeypatch.setattr(pmx.plugins, "_HOST", host)
    return host


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_slide_info_json(cmu_pyramid):
    result = _invoke("slide", "info", str(cmu_pyramid), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["vendor"] == "aperio" and payload["width"] == 2220
    assert payload["mpp_x"] == pytest.approx(0.499) and payload["mpp_source"] == "openslide"
    assert [lv["width"] for lv in payload["levels"]] == [2220, 555, 138]
    assert "tissue" not in payload


def test_slide_info_text_with_images(cmu_pyramid, tmp_path):
    mask, overlay, thumb = tmp_path / "mask.png", tmp_path / "overlay.png", tmp_path / "t.png"
    result = _invoke("slide", "info", str(cmu_pyramid), "--mask", str(mask), "--overlay",
                     str(overlay), "--thumbnail", str(thumb), "--thumbnail-size", "300")
    assert result.exit_code == 0, result.output
    assert "aperio" in result.output and "tissue" in result.output and "0.499" in result.output
    with Image.open(mask) as image:
        assert image.mode == "L" and image.size == (139, 186)
        assert set(np.unique(np.asarray(image)).tolist()) == {0, 255}
    with Image.open(thumb) as image:
        assert max(image.size) == 300
    assert overlay.stat().st_size > 0


def test_slide_info_errors_exit_2_naming_the_file(broken, tmp_path):
    result = CliRunner().invoke(cli, ["slide", "info", str(broken)])
    assert result.exit_code == 2
    assert "broken.svs" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["slide", "info", str(tmp_path / "nope.svs")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_slide_info_mpp_override(synth_no_mpp):
    result = _invoke("slide", "info", str(synth_no_mpp.path), "--json", "--mpp", "0.25")
    payload = json.loads(result.output)
    assert payload["mpp_x"] == 0.25 and payload["mpp_source"] == "override"
    assert payload["magnification"] == pytest.approx(40)


def test_tile_into_the_store_then_resume(tiling_host, synth20, cmu_pyramid, tmp_path):
    store = tmp_path / "store"
    args = ["tile", "--tiler", "grid", "--set", "min_tissue=0.5", "--set", "pixels=\"jpeg\"",
            "--store", str(store), "--workers", "1", "--json", str(synth20.path), str(cmu_pyramid)]
    first = _invoke(*args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output[first.output.index("{"):])
    assert summary["computed"] == 2 and summary["tiles"] > 0 and summary["tiler"] == "grid"
    rerun = _invoke(*args).output
    second = json.loads(rerun[rerun.index("{"):])
    assert second["computed"] == 0 and second["skipped"] == 2

    from pmx.featurestore import open_store

    assert open_store(store).count("tiles") == summary["tiles"]


def test_tile_to_parquet_and_config_errors(tiling_host, synth20, tmp_path):
    out = tmp_path / "out"
    result = _invoke("tile", "--tiler", "hsv-scored", "--set", "candidates=20", "--set",
                     "top_k=3", "--out", str(out), "--no-progress", str(synth20.path))
    assert result.exit_code == 0, result.output
    files = list(out.glob("hsv-scored-*/synth20.parquet"))
    assert len(files) == 1
    bad_key = CliRunner().invoke(cli, ["tile", "--tiler", "grid", "--set", "sise=3", "--out",
                                       str(out), str(synth20.path)])
    assert bad_key.exit_code == 2 and "unknown key 'sise'" in bad_key.output
    unknown = CliRunner().invoke(cli, ["tile", "--tiler", "nope", "--out", str(out),
                                       str(synth20.path)])
    assert unknown.exit_code == 2 and "no tiler named 'nope'" in unknown.output
    assert "grid" in unknown.output
    both = CliRunner().invoke(cli, ["tile", "--tiler", "grid", "--out", str(out), "--cohort",
                                    str(tmp_path), str(synth20.path)])
    assert both.exit_code == 2 and "give slide files/folders or --cohort, not both" in both.output


def test_tile_reports_failed_slides_with_exit_2(tiling_host, synth20, broken, tmp_path):
    result = CliRunner().invoke(cli, ["tile", "--tiler", "grid", "--out", str(tmp_path / "o"),
                                      "--no-progress", "--workers", "1", str(synth20.path),
                                      str(broken)])
    assert result.exit_code == 2
    assert "1 of 2 slide(s) could not be tiled" in result.output and "broken.svs" in result.output
