"""The slide reader: metadata, pixel size resolution, level choice, reads, and error paths."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pmx.errors import ConfigError, DataError
from pmx.slides import (
    load_mpp_overrides,
    magnification_to_mpp,
    mpp_to_magnification,
    open_slide,
    resolve_mpp,
    target_mpp,
)
from pmx.slides.overrides import lookup_mpp


def test_real_aperio_slide_metadata(cmu, cmu_pyramid):
    with open_slide(cmu) as flat, open_slide(cmu_pyramid) as pyramid:
        info = flat.info()
        assert info.vendor == "aperio"
        assert (info.width, info.height) == (2220, 2967)
        assert info.mpp_x == pytest.approx(0.499) and info.mpp_source == "openslide"
        assert info.objective_power == 20
        assert info.magnification == pytest.approx(10 / 0.499)
        assert set(info.associated_images) == {"label", "macro", "thumbnail"}
        assert len(info.levels) == 1 and info.slide_id == "CMU-1-Small-Region"
        levels = pyramid.info().levels
        assert [(lv.width, lv.height) for lv in levels] == [(2220, 2967), (555, 741), (138, 185)]
        assert levels[1].mpp == pytest.approx(0.499 * 4.002, rel=1e-3)
        payload = pyramid.info().as_dict()
        assert payload["levels"][2]["downsample"] == pytest.approx(16.062, rel=1e-3)


def test_magnification_mpp_convention():
    assert magnification_to_mpp(20) == 0.5 and magnification_to_mpp(40) == 0.25
    assert mpp_to_magnification(0.5) == 20 and mpp_to_magnification(2.0) == 5
    assert target_mpp(5, None) == 2.0
    assert target_mpp(20, 0.3) == 0.3  # mpp wins
    assert target_mpp("native", None) is None
    with pytest.raises(ConfigError):
        magnification_to_mpp(0)


def test_mpp_resolution_order():
    aperio = {"openslide.mpp-x": "0.2525", "openslide.mpp-y": "0.2526",
              "openslide.objective-power": "40"}
    assert resolve_mpp(aperio) == (0.2525, 0.2526, "openslide")
    assert resolve_mpp(aperio, override=0.5) == (0.5, 0.5, "override")
    # TIFF resolution in pixels per centimetre: 40000 px/cm = 0.25 um/px
    tiff = {"tiff.XResolution": "40000", "tiff.YResolution": "40000",
            "tiff.ResolutionUnit": "centimeter"}
    assert resolve_mpp(tiff) == (pytest.approx(0.25), pytest.approx(0.25), "tiff-resolution")
    # 72 dpi is a screen default, not a pixel size: falls through to objective power
    screen = {"tiff.XResolution": "72", "tiff.ResolutionUnit": "inch",
              "openslide.objective-power": "20"}
    assert resolve_mpp(screen) == (0.5, 0.5, "objective-power")
    assert resolve_mpp({"openslide.mpp-x": "0"}) == (None, None, None)
    with pytest.raises(DataError):
        resolve_mpp({}, override=-1)


def test_best_level_is_the_nearest_finer_level(cmu_pyramid):
    with open_slide(cmu_pyramid) as slide:
        assert slide.best_level(1.0) == 0
        assert slide.best_level(3.9) == 0
        assert slide.best_level(4.0) == 1  # level 1 is 4.002: within the 1% tolerance
        assert slide.best_level(15.9) == 1
        assert slide.best_level(16.062) == 2
        assert slide.best_level(100.0) == 2


def test_read_at_target_mpp_uses_the_right_level(cmu_pyramid):
    with open_slide(cmu_pyramid) as slide:
        # 256 px at 2 um/px: level 1 (~1.997 um/px) read directly, within the resize tolerance
        tile = slide.read(400, 800, 256, target_mpp=2.0)
        direct = slide.read_level(400, 800, 1, 256, 256)
        assert tile.shape == (256, 256, 3) and tile.dtype == np.uint8
        np.testing.assert_array_equal(tile, direct)
        # 128 px at 1 um/px: level 0 read (257 px of 0.499) then resized, i.e. the same
        # field of view as the 256 px level-0 read downsampled
        half = slide.read(400, 800, 128, target_mpp=1.0).astype(float)
        ref = np.asarray(Image.fromarray(slide.read_level(400, 800, 0, 256, 256)).resize(
            (128, 128), Image.Resampling.BILINEAR)).astype(float)
        assert np.abs(half - ref).mean() < 6
        # out_size: a 1024 px field at 0.5 um/px kept at 64 px comes from level 2 (16x)
        small = slide.read(0, 0, 1024, target_mpp=0.5, out_size=64)
        assert small.shape == (64, 64, 3)


def test_read_outside_the_slide_is_white(cmu_pyramid):
    with open_slide(cmu_pyramid) as slide:
        tile = slide.read_box(-300, -300, 512, 512)
        assert (tile[:250, :250] == 255).all()
        tile = slide.read_box(2100, 2900, 256, 256)
        assert (tile[-100:, -100:] == 255).all()


def test_native_read_without_mpp_and_clear_error_when_one_is_needed(synth_no_mpp):
    with open_slide(synth_no_mpp.path) as slide:
        assert slide.mpp is None and slide.mpp_source is None and slide.magnification is None
        assert slide.read(0, 0, 64).shape == (64, 64, 3)  # native pixels need no mpp
        with pytest.raises(DataError) as err:
            slide.read(0, 0, 64, target_mpp=0.5)
        text = str(err.value)
        assert "nompp.svs" in text and "no pixel size" in text and "mpp" in text
    with open_slide(synth_no_mpp.path, mpp=0.5) as slide:
        assert slide.mpp == 0.5 and slide.mpp_source == "override"
        assert slide.read(0, 0, 64, target_mpp=1.0).shape == (64, 64, 3)


def test_unreadable_files_name_the_file_and_reason(broken, truncated, tmp_path):
    with pytest.raises(DataError) as err:
        open_slide(broken)
    assert "broken.svs" in str(err.value) and "not a slide OpenSlide can read" in str(err.value)
    with pytest.raises(DataError) as err:
        open_slide(truncated)
    assert "truncated.svs" in str(err.value) and "truncated or corrupt" in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        open_slide(tmp_path / "missing.svs")
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        open_slide(empty)
    with pytest.raises(DataError, match="folder"):
        open_slide(tmp_path)


def test_corrupt_tile_fails_at_read_time_naming_the_slide(corrupt_tile):
    with open_slide(corrupt_tile) as slide:  # metadata and the smallest level are fine
        with pytest.raises(DataError) as err:
            slide.read_level(0, 0, 0, 512, 512)
    assert "corrupt.svs" in str(err.value) and "level 0" in str(err.value)


def test_mpp_override_file(tmp_path):
    table = tmp_path / "mpp.csv"
    table.write_text("slide_id,path,mpp\nS1,,0.25\n,/data/s2.svs,0.5\n")
    overrides = load_mpp_overrides(table)
    assert lookup_mpp(overrides, "S1", "/elsewhere/S1.svs") == 0.25
    assert lookup_mpp(overrides, "s2", "/data/s2.svs") == 0.5
    assert lookup_mpp(overrides, "S3", "/data/s3.svs") is None
    tsv = tmp_path / "mpp.tsv"
    tsv.write_text("slide_id\tmpp\nS1\tabc\n")
    with pytest.raises(DataError, match="line 2"):
        load_mpp_overrides(tsv)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,size\nS1,3\n")
    with pytest.raises(DataError, match="needs a `mpp` column"):
        load_mpp_overrides(bad)
