"""Tissue detection: Otsu, the cleaned mask against planted tissue, and box fractions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pmx.slides import TissueConfig, detect_tissue, open_slide, otsu_threshold
from pmx.slides.tissue import box_means, summed_area


def _between_class_variance(values: np.ndarray, t: int) -> float:
    low, high = values[values <= t].astype(float), values[values > t].astype(float)
    if not low.size or not high.size:
        return -1.0
    return low.size * high.size * (low.mean() - high.mean()) ** 2


def test_otsu_maximises_between_class_variance():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(40, 12, 5000), rng.normal(120, 20, 3000)])
    values = np.clip(values, 0, 255).astype(np.uint8)
    threshold = otsu_threshold(values)
    scores = [_between_class_variance(values, t) for t in range(256)]
    assert scores[threshold] == pytest.approx(max(scores))
    assert 60 < threshold < 100
    # separated modes: the threshold splits them exactly
    gap = np.concatenate([np.full(50, 10), np.full(30, 200)]).astype(np.uint8)
    t = otsu_threshold(gap)
    assert 10 <= t < 200
    assert otsu_threshold(np.zeros(0, np.uint8)) == 0


def test_box_means_match_brute_force():
    rng = np.random.default_rng(1)
    image = rng.random((40, 50))
    table = summed_area(image)
    boxes = rng.integers(-5, 55, size=(200, 4))
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + rng.integers(1, 20, 200), y0 + rng.integers(1, 20, 200)
    got = box_means(table, x0, y0, x1, y1)
    for i in range(200):
        padded = np.zeros((120, 120))
        padded[30:70, 30:80] = image
        want = padded[y0[i] + 30:y1[i] + 30, x0[i] + 30:x1[i] + 30].mean()
        assert got[i] == pytest.approx(want)


def test_mask_matches_the_planted_tissue(synth20):
    with open_slide(synth20.path) as slide:
        mask = detect_tissue(slide)
    assert mask.mask_mpp == pytest.approx(8.0)  # 8 um/px analysis thumbnail
    assert mask.shape == (150, 188)
    planted = np.asarray(Image.fromarray(synth20.tissue).resize(mask.shape[::-1])) > 0
    inter = (planted & mask.mask).sum()
    union = (planted | mask.mask).sum()
    assert inter / union > 0.95
    assert mask.tissue_fraction == pytest.approx(synth20.tissue.mean(), abs=0.02)
    x, y, w, h = mask.bbox()
    ys, xs = np.nonzero(synth20.tissue)
    assert abs(x - xs.min()) < 40 and abs(y - ys.min()) < 40
    assert abs(x + w - xs.max()) < 40 and abs(y + h - ys.max()) < 40


def test_tile_fractions_match_the_planted_tissue(synth20):
    with open_slide(synth20.path) as slide:
        mask = detect_tissue(slide)
    rng = np.random.default_rng(2)
    xs = rng.integers(0, synth20.width - 256, 300)
    ys = rng.integers(0, synth20.height - 256, 300)
    got = mask.fractions(xs, ys, 256, 256)
    want = np.array([synth20.tissue[y:y + 256, x:x + 256].mean() for x, y in zip(xs, ys)])
    assert np.abs(got - want).max() < 0.12
    assert np.abs(got - want).mean() < 0.02


def test_blank_slide_has_no_tissue(blank_slide):
    with open_slide(blank_slide) as slide:
        mask = detect_tissue(slide)
    assert not mask.mask.any() and mask.bbox() is None
    assert mask.threshold >= TissueConfig().min_saturation


def test_real_slide_mask(cmu, cmu_pyramid):
    fractions = []
    for path in (cmu, cmu_pyramid):
        with open_slide(path) as slide:
            mask = detect_tissue(slide)
        fractions.append(mask.tissue_fraction)
        # top-left corner is glass; the lower middle of this slide is epidermis/dermis
        assert mask.fraction(0, 0, 400, 400) == 0.0
        assert mask.fraction(1000, 2000, 400, 400) > 0.9
    assert 0.25 < fractions[0] < 0.45
    assert fractions[0] == pytest.approx(fractions[1], abs=0.01)  # pyramid level == resize


def test_clean_up_removes_specks(synth20):
    loose = TissueConfig(min_object_um2=0, open_radius=0, close_radius=0, median_size=0)
    with open_slide(synth20.path) as slide:
        cleaned = detect_tissue(slide)
        raw = detect_tissue(slide, loose)
    from scipy import ndimage

    assert ndimage.label(cleaned.mask)[1] == 2  # the two planted ellipses
    assert ndimage.label(raw.mask)[1] >= 2
