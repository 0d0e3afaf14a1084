"""representative-region, region and hsv-scored: scores, geometry, small-slide policies."""

from __future__ import annotations

import numpy as np
import pytest

from pmx.errors import ConfigError, DataError
from pmx.slides import detect_tissue, open_slide
from pmx.slides.tissue import darkness
from pmx.tiling import (
    HsvScoredTiler,
    RegionTiler,
    RepresentativeRegionTiler,
    decode_pixels,
    hsv_score,
    read_tile,
    subpatch_grid,
)


def _run(tiler, path):
    with open_slide(path) as slide:
        return tiler.tile(slide)


def _rows(result):
    return result.records.to_pylist()


def _overlap(row, box):
    x, y, w, h = box
    e = row["extent"]
    dx = max(0.0, min(row["x"] + e, x + w) - max(row["x"], x))
    dy = max(0.0, min(row["y"] + e, y + h) - max(row["y"], y))
    return dx * dy / (w * h)


# -- representative-region -------------------------------------------------------------------
def test_representative_region_picks_the_densest_window(synth20):
    tiler = RepresentativeRegionTiler(size=512, magnification=20, stride=100, pixels="none")
    result = _run(tiler, synth20.path)
    assert result.n_tiles == 1 and not result.notes
    row = _rows(result)[0]
    assert row["kind"] == "region" and row["x"] % 100 == 0 and row["y"] % 100 == 0
    assert _overlap(row, synth20.dark_box) > 0.9  # the planted nuclei-dense box

    # the documented score, brute force over every window on the mask grid
    with open_slide(synth20.path) as slide:
        mask = detect_tissue(slide)
    weight = mask.mask * darkness(mask.thumbnail)
    best, best_xy = -1.0, None
    for y in range(0, 2400 - 512 + 1, 100):
        for x in range(0, 3000 - 512 + 1, 100):
            x0, y0 = round(x / mask.downsample_x), round(y / mask.downsample_y)
            x1, y1 = round((x + 512) / mask.downsample_x), round((y + 512) / mask.downsample_y)
            score = weight[y0:y1, x0:x1].sum() / ((x1 - x0) * (y1 - y0))
            if score > best + 1e-12:
                best, best_xy = score, (x, y)
    assert (row["x"], row["y"]) == best_xy
    assert row["score"] == pytest.approx(best, rel=1e-5)


def test_representative_region_tissue_score_prefers_full_tissue(synth20):
    tiler = RepresentativeRegionTiler(size=512, magnification=20, score="tissue", pixels="none")
    row = _rows(_run(tiler, synth20.path))[0]
    assert row["tissue"] == pytest.approx(1.0) and row["score"] == row["tissue"]
    assert synth20.tissue[row["y"]:row["y"] + 512, row["x"]:row["x"] + 512].mean() > 0.97


def test_representative_region_on_a_slide_smaller_than_the_region(cmu_pyramid):
    result = _run(RepresentativeRegionTiler(), cmu_pyramid)  # 1024 px at 5x = 4104 level-0 px
    assert result.n_tiles == 1
    assert any("smaller than one region" in n and "padded" in n for n in result.notes)
    row = _rows(result)[0]
    assert row["padded"] and row["mpp"] == pytest.approx(2.0)
    assert row["x"] <= 0 and row["y"] <= 0
    assert row["x"] + row["extent"] >= 2220 and row["y"] + row["extent"] >= 2967
    image = decode_pixels(row["pixels"])
    assert image.shape == (1024, 1024, 3)
    assert (image[:5, :5] > 240).all()  # padding is white

    with pytest.raises(DataError) as err:
        _run(RepresentativeRegionTiler(small_slide="error"), cmu_pyramid)
    assert "CMU-1-Small-Region-pyramid" in str(err.value) and "small_slide=pad" in str(err.value)
    skipped = _run(RepresentativeRegionTiler(small_slide="skip"), cmu_pyramid)
    assert skipped.n_tiles == 0 and "skipped" in skipped.notes[0]
    shrunk = _rows(_run(RepresentativeRegionTiler(small_slide="shrink", pixels="none"), cmu_pyramid))[0]
    assert shrunk["extent"] == 2220 and not shrunk["padded"]
    assert shrunk["mpp"] == pytest.approx(0.499 * 2220 / 1024)


def test_no_tissue_gives_no_region_and_says_so(blank_slide):
    for tiler in (RepresentativeRegionTiler(magnification=20, size=256), RegionTiler(size=512),
                  HsvScoredTiler(candidates=10)):
        result = _run(tiler, blank_slide)
        assert result.n_tiles == 0 and "no tissue" in result.notes[0]


# -- region -----------------------------------------------------------------------------------
def test_region_grid_is_centred_on_tissue_and_covers_it(synth20):
    tiler = RegionTiler(size=1024, magnification=20, min_tissue=0.0, pixels="none")
    rows = _rows(_run(tiler, synth20.path))
    xs = sorted({r["x"] for r in rows})
    ys = sorted({r["y"] for r in rows})
    assert np.diff(xs).tolist() == [1024] * (len(xs) - 1)  # non-overlapping, adjacent
    assert np.diff(ys).tolist() == [1024] * (len(ys) - 1)
    assert (len(xs), len(ys)) == (3, 2)
    covered = np.zeros_like(synth20.tissue)
    for r in rows:
        covered[max(r["y"], 0):r["y"] + 1024, max(r["x"], 0):r["x"] + 1024] = True
    assert covered[synth20.tissue].all()
    assert {r["out_size"] for r in rows} == {256} and {r["mpp"] for r in rows} == {2.0}
    filtered = _rows(_run(RegionTiler(size=1024, magnification=20, pixels="none"), synth20.path))
    assert 0 < len(filtered) < len(rows) and all(r["tissue"] >= 0.25 for r in filtered)


def test_region_ranking_and_cap(synth20):
    every = _rows(_run(RegionTiler(size=512, magnification=20, pixels="none"), synth20.path))
    top = _rows(_run(RegionTiler(size=512, magnification=20, pixels="none", rank_by="darkest",
                                 max_regions=3), synth20.path))
    scores = sorted((r["score"] for r in every), reverse=True)
    assert [r["score"] for r in top] == pytest.approx(scores[:3])
    assert _overlap(top[0], synth20.dark_box) > 0.2
    most = _rows(_run(RegionTiler(size=512, magnification=20, pixels="none", rank_by="tissue"),
                      synth20.path))
    assert [r["tissue"] for r in most] == sorted((r["tissue"] for r in every), reverse=True)


def test_region_subpatches_are_addressable(synth20):
    tiler = RegionTiler(size=1024, magnification=20, subpatch_size=64, subpatches=True,
                        max_regions=1, rank_by="tissue", pixels="png")
    rows = _rows(_run(tiler, synth20.path))
    region, subs = rows[0], rows[1:]
    assert region["kind"] == "region" and len(subs) == 256
    assert [s["sub_index"] for s in subs] == list(range(256))
    assert {s["parent_index"] for s in subs} == {region["tile_index"]}
    corners, sub_extent = subpatch_grid(region["x"], region["y"], region["extent"], 1024, 64)
    assert sub_extent == 64
    assert [(s["x"], s["y"]) for s in subs] == [tuple(c) for c in corners.tolist()]
    assert (subs[17]["x"], subs[17]["y"]) == (region["x"] + 64, region["y"] + 64)
    with open_slide(synth20.path) as slide:
        full = slide.read_box(region["x"], region["y"], 1024, 1024)
    j = 37
    row, col = divmod(j, 16)
    np.testing.assert_array_equal(decode_pixels(subs[j]["pixels"]),
                                  full[row * 64:(row + 1) * 64, col * 64:(col + 1) * 64])
    assert decode_pixels(region["pixels"]).shape == (256, 256, 3)
    with pytest.raises(ConfigError, match="must divide"):
        RegionTiler(size=1000, subpatch_size=256)


def test_region_defaults_on_a_small_real_slide(cmu_pyramid):
    result = _run(RegionTiler(), cmu_pyramid)  # 4096 px at 20x > the whole slide
    rows = _rows(result)
    assert len(rows) == 1 and rows[0]["padded"]
    assert any("padded" in n for n in result.notes) and any("keep_best" in n for n in result.notes)
    assert rows[0]["level"] == 2 and rows[0]["mpp"] == pytest.approx(8.0, rel=1e-3)
    assert decode_pixels(rows[0]["pixels"]).shape == (256, 256, 3)
    strict = _run(RegionTiler(keep_best=False), cmu_pyramid)
    assert strict.n_tiles == 0


# -- hsv-scored ---------------------------------------------------------------------------------
def test_hsv_score_counts_dark_saturated_pixels():
    image = np.full((10, 10, 3), 255, np.uint8)
    image[:3] = (90, 50, 140)     # nucleus purple: S 164, V 140 -> counts
    image[3:5] = (222, 150, 190)  # eosin pink: S 83 -> does not count
    image[5:6] = (40, 40, 40)     # black: S 0 -> does not count
    assert hsv_score(image) == 30


def test_hsv_scored_keeps_the_top_candidates(synth20):
    tiler = HsvScoredTiler(candidates=80, top_k=8, pixels="none", seed=0)
    rows = _rows(_run(tiler, synth20.path))
    assert len(rows) == 8
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert sum(_overlap(r, synth20.dark_box) > 0.1 for r in rows) >= 6
    assert all(r["tissue"] > 0.3 for r in rows)
    with open_slide(synth20.path) as slide:
        assert hsv_score(read_tile(slide, rows[0])) == rows[0]["score"]
    again = _rows(_run(tiler, synth20.path))
    assert [(r["x"], r["y"]) for r in again] == [(r["x"], r["y"]) for r in rows]
    other = _rows(_run(HsvScoredTiler(candidates=80, top_k=8, pixels="none", seed=1),
                       synth20.path))
    assert [(r["x"], r["y"]) for r in other] != [(r["x"], r["y"]) for r in rows]


def test_hsv_scored_on_a_real_slide(cmu_pyramid):
    result = _run(HsvScoredTiler(candidates=60, top_k=5), cmu_pyramid)
    rows = _rows(result)
    assert len(rows) == 5 and not result.notes
    assert all(r["tissue"] > 0.25 and not r["padded"] for r in rows)  # centred in tissue
    assert np.mean([r["tissue"] for r in rows]) > 0.6
    assert all(0 <= r["x"] <= 2220 - 257 and 0 <= r["y"] <= 2967 - 257 for r in rows)
    assert decode_pixels(rows[0]["pixels"]).shape == (256, 256, 3)
    assert rows[0]["pixel_format"] == "jpeg"
