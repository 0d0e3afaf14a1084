"""The grid tiler: coordinates, magnification handling, tissue filtering, pixels."""

from __future__ import annotations

import numpy as np
import pytest

from pmx.errors import ConfigError, DataError
from pmx.plugins import BUILTIN_PLUGINS, load_host
from pmx.slides import open_slide
from pmx.tiling import GridTiler, decode_pixels, read_tile


def _tile(path, **config):
    with open_slide(path) as slide:
        return GridTiler(config).tile(slide)


def _columns(result, *names):
    return [result.records.column(n).to_pylist() for n in names]


def test_builtin_tilers_are_registered_with_typed_configs():
    host = load_host(entry_points=[], builtins=["pmx.tiling.builtin"])
    assert not host.errors
    assert host.registry.names("tiler") == ["grid", "hsv-scored", "region", "representative-region"]
    cls = host.registry.get("tiler", "grid")
    assert cls is GridTiler
    tiler = cls({"size": 512, "magnification": 40, "overlap": 64})
    assert tiler.config.step == 448
    with pytest.raises(ConfigError, match="sise"):  # names the unknown key
        cls({"sise": 512})
    with pytest.raises(ConfigError, match="overlap"):
        cls({"size": 256, "overlap": 256})
    assert GridTiler(size=512).fingerprint != GridTiler().fingerprint
    assert "pmx.tiling.builtin" in BUILTIN_PLUGINS


def test_coordinates_of_a_full_grid_at_20x(synth20):
    result = _tile(synth20.path, min_tissue=0.0)
    xs, ys, levels, sizes, mpps = _columns(result, "x", "y", "level", "size", "mpp")
    assert result.n_tiles == (3000 // 256) * (2400 // 256)  # 11 x 9, partial edges dropped
    assert sorted(set(xs)) == [256 * i for i in range(11)]
    assert sorted(set(ys)) == [256 * i for i in range(9)]
    assert list(zip(ys, xs)) == sorted(zip(ys, xs))  # raster order
    assert set(levels) == {0} and set(sizes) == {256} and set(mpps) == {0.5}
    assert result.records.column("tile_index").to_pylist() == list(range(result.n_tiles))


def test_magnification_handling_on_a_40x_slide(synth40):
    # 256 px at 20x on a 0.25 um/px slide = 512 level-0 px, read at level 0, resized to 256
    result = _tile(synth40.path, min_tissue=0.0, pixels="png")
    xs, extents, sizes, mpps, mags = _columns(result, "x", "extent", "size", "mpp", "magnification")
    assert result.n_tiles == (3000 // 512) * (2400 // 512)
    assert sorted(set(xs)) == [512 * i for i in range(5)]
    assert set(extents) == {512.0} and set(sizes) == {512}
    assert set(mpps) == {0.5} and set(mags) == {20.0}
    row = result.records.slice(7, 1).to_pylist()[0]
    image = decode_pixels(row["pixels"])
    assert image.shape == (256, 256, 3)
    with open_slide(synth40.path) as slide:
        np.testing.assert_array_equal(image, read_tile(slide, row))  # PNG is lossless
        expected = slide.read(row["x"], row["y"], 256, target_mpp=0.5)
    np.testing.assert_array_equal(image, expected)
    # the same grid at 10x on the 40x slide: 1024 level-0 px read from the 4x level
    coarse = _tile(synth40.path, min_tissue=0.0, magnification=10)
    assert set(coarse.records.column("level").to_pylist()) == {1}
    assert set(coarse.records.column("size").to_pylist()) == {256}
    assert coarse.n_tiles == (3000 // 1024) * (2400 // 1024)
    # mpp overrides magnification
    by_mpp = _tile(synth40.path, min_tissue=0.0, magnification=5, mpp=0.5)
    assert by_mpp.n_tiles == result.n_tiles


def test_tissue_filtering(synth20):
    every = _tile(synth20.path, min_tissue=0.0)
    kept = _tile(synth20.path, min_tissue=0.5)
    assert 0 < kept.n_tiles < every.n_tiles
    planted = synth20.tissue
    for row in kept.records.to_pylist():
        true_fraction = planted[row["y"]:row["y"] + 256, row["x"]:row["x"] + 256].mean()
        assert row["tissue"] >= 0.5
        assert true_fraction > 0.35
    kept_xy = {(r["x"], r["y"]) for r in kept.records.to_pylist()}
    for row in every.records.to_pylist():
        true_fraction = planted[row["y"]:row["y"] + 256, row["x"]:row["x"] + 256].mean()
        if true_fraction > 0.65:
            assert (row["x"], row["y"]) in kept_xy
        if true_fraction < 0.35:
            assert (row["x"], row["y"]) not in kept_xy


def test_overlap_stride_and_padded_edges(synth20):
    overlapping = _tile(synth20.path, min_tissue=0.0, overlap=128)
    xs = sorted(set(overlapping.records.column("x").to_pylist()))
    assert xs[:3] == [0, 128, 256] and xs[-1] + 256 <= 3000
    strided = _tile(synth20.path, min_tissue=0.0, stride=512)
    assert sorted(set(strided.records.column("y").to_pylist())) == [0, 512, 1024, 1536, 2048]
    padded = _tile(synth20.path, min_tissue=0.0, edge="pad")
    assert padded.n_tiles == 12 * 10  # partial tiles at the right and bottom edges kept
    flags = {(r["x"], r["y"]): r["padded"] for r in padded.records.to_pylist()}
    assert flags[(2816, 0)] and flags[(0, 2304)] and not flags[(2560, 2048)]


def test_native_resolution_and_upsampling_warning(synth_no_mpp, synth20):
    native = _tile(synth_no_mpp.path, magnification="native", min_tissue=0.0)
    assert native.n_tiles == 99
    assert native.records.column("mpp").to_pylist()[0] is None
    with pytest.raises(DataError, match="no pixel size"):
        _tile(synth_no_mpp.path)
    up = _tile(synth20.path, magnification=40, size=128)
    assert any("upsampled 2.00x" in note for note in up.notes)


def test_real_slides_flat_and_pyramid_agree(cmu, cmu_pyramid):
    flat = _tile(cmu, min_tissue=0.5)
    pyramid = _tile(cmu_pyramid, min_tissue=0.5)
    assert 15 < flat.n_tiles < 60
    a = set(zip(*_columns(flat, "x", "y")))
    b = set(zip(*_columns(pyramid, "x", "y")))
    assert len(a & b) >= 0.9 * max(len(a), len(b))
    # 256 px at 20x on a 0.499 um/px slide: 256.5 level-0 px, floor-stepped
    extents = flat.records.column("extent").to_pylist()
    assert extents == pytest.approx([256 * 0.5 / 0.499] * flat.n_tiles)
    assert min(flat.records.column("tissue").to_pylist()) >= 0.5
