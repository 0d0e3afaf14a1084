"""``hsv-scored``: random tissue patches ranked by strongly stained pixels (impuTMAE).

impuTMAE masks tissue with Otsu on a thumbnail, samples 1000 candidate 256x256 patches in the
tissue, and keeps the ones with the highest "HSV intensity": the number of pixels with HSV
saturation > 130 and value < 170 (0-255 scale), i.e. dark, saturated (nuclei-rich) pixels.

Candidates: ``candidates`` tissue-mask pixels drawn uniformly (with replacement) with a seeded
generator (``seed`` and the slide id, so results do not depend on slide order), each jittered
inside its mask pixel; the patch is centred there and shifted to lie inside the slide. Duplicate
positions are dropped. Each candidate is read at the target resolution and scored; the top
``top_k`` (ties: earlier candidate first) are kept, best first, with the count as ``score``.
"""

from __future__ import annotations

import zlib
from typing import ClassVar, Literal

import numpy as np

from ..config import Field
from ..slides.reader import Slide
from ..slides.tissue import TissueMask, saturation_value
from .base import Tiler, TilerConfig, centred_start, is_padded
from .boxes import plan_box, read_box
from .records import TileSpec


def hsv_score(rgb: np.ndarray, saturation_min: int = 130, value_max: int = 170) -> int:
    """Number of pixels with HSV saturation > saturation_min and value < value_max."""
    saturation, value = saturation_value(rgb)
    return int(np.count_nonzero((saturation > saturation_min) & (value < value_max)))


class HsvScoredConfig(TilerConfig):
    size: int = Field(256, ge=1, description="patch edge in pixels at the target resolution")
    magnification: float | Literal["native"] = Field(20.0, description=(
        "target magnification (10 um / magnification = mpp); 'native' = level-0 pixels"))
    candidates: int = Field(1000, ge=1, description="candidate positions sampled in the tissue")
    top_k: int = Field(16, ge=1, description="patches kept per slide (highest scores)")
    saturation_min: int = Field(130, ge=0, le=255, description=(
        "a pixel counts when its HSV saturation is above this (0-255)"))
    value_max: int = Field(170, ge=0, le=256, description=(
        "... and its HSV value is below this (0-255)"))
    seed: int = Field(0, description="seed of the candidate sampling (combined with the slide id)")
    pixels: Literal["none", "jpeg", "png"] = Field("jpeg", description=(
        "store patch pixels as JPEG or PNG bytes ('none' = coordinates only)"))


class HsvScoredTiler(Tiler):
    """Top-K of N random tissue patches by count of dark saturated pixels (impuTMAE)."""

    name: ClassVar[str] = "hsv-scored"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[HsvScoredConfig]] = HsvScoredConfig

    def plan(self, slide: Slide, tissue: TissueMask, notes: list[str]) -> list[TileSpec]:
        cfg = self.config
        window = self.window(slide, notes)
        if window is None:
            return []
        scale, extent, fitted = window
        rows, cols = np.nonzero(tissue.mask)
        if rows.size == 0:
            notes.append(f"slide {slide.slide_id}: no tissue detected; no patch kept")
            return []
        rng = np.random.default_rng([cfg.seed, zlib.crc32(slide.slide_id.encode("utf-8"))])
        pick = rng.integers(0, rows.size, size=cfg.candidates)
        jitter = rng.random((cfg.candidates, 2))
        cx = (cols[pick] + jitter[:, 0]) * tissue.downsample_x
        cy = (rows[pick] + jitter[:, 1]) * tissue.downsample_y
        xs = np.floor(centred_start(cx, fitted, slide.width)).astype(np.int64)
        ys = np.floor(centred_start(cy, fitted, slide.height)).astype(np.int64)
        coords = np.stack([xs, ys], axis=1)
        _, first = np.unique(coords, axis=0, return_index=True)
        coords = coords[np.sort(first)]
        scores = np.array(self.map_reads(
            lambda xy: hsv_score(read_box(slide, plan_box(slide, int(xy[0]), int(xy[1]), fitted,
                                                          cfg.size)),
                                 cfg.saturation_min, cfg.value_max),
            coords.tolist()), dtype=np.float64)
        order = np.argsort(-scores, kind="stable")[: cfg.top_k]
        fractions = tissue.fractions(coords[order, 0], coords[order, 1], fitted, fitted)
        specs = []
        for i, f in zip(order, fractions):
            x, y = int(coords[i, 0]), int(coords[i, 1])
            specs.append(TileSpec(
                x=x, y=y, extent=fitted, out_size=cfg.size, tissue=float(f),
                score=float(scores[i]), padded=is_padded(x, y, fitted, slide)))
        if len(specs) < cfg.top_k:
            notes.append(f"slide {slide.slide_id}: only {len(specs)} distinct candidate patches "
                         f"(top_k = {cfg.top_k})")
        return specs
