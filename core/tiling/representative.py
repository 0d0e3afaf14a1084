"""``representative-region``: the one most informative region of a slide (ContraMAE).

ContraMAE crops the slide at 5x into overlapping 1024x1024 windows with a stride of 100 px and
keeps the one with the highest "image density" (summed RGB, i.e. stain). pmx scores a window B
on the tissue mask's grid (the ~8 um/px analysis thumbnail) as

    score(B) = (1 / |B|) * sum over pixels p in B of  m(p) * (1 - (R(p) + G(p) + B(p)) / 765)

where m is the tissue mask (1 tissue, 0 background; pixels outside the slide count as 0) and
the second factor is darkness (0 for white glass, towards 1 for dense haematoxylin). It equals
tissue fraction x mean darkness inside the tissue, so it prefers windows full of tissue and,
among those, the densest (darkest) stain. ``score = "tissue"`` uses the tissue fraction alone.
Ties go to the first window in raster order. A slide smaller than one window follows the
``small_slide`` policy (default: one window centred on the tissue, padded with white).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from ..config import Field
from ..slides.reader import Slide
from ..slides.tissue import TissueMask
from .base import (Tiler, TilerConfig, axis_starts, centred_start, dark_tissue_scores,
                   is_padded)
from .records import TileSpec


class RepresentativeRegionConfig(TilerConfig):
    size: int = Field(1024, ge=1, description="region edge in pixels at the target resolution")
    magnification: float | Literal["native"] = Field(5.0, description=(
        "target magnification (10 um / magnification = mpp); 'native' = level-0 pixels"))
    stride: int = Field(100, ge=1, description="sliding-window step in target pixels")
    score: Literal["dark-tissue", "tissue"] = Field("dark-tissue", description=(
        "window score: tissue fraction x mean darkness in tissue, or tissue fraction alone"))
    pixels: Literal["none", "jpeg", "png"] = Field("jpeg", description=(
        "store region pixels as JPEG or PNG bytes ('none' = coordinates only)"))


class RepresentativeRegionTiler(Tiler):
    """One representative region per slide: the sliding window with the densest tissue (ContraMAE)."""

    name: ClassVar[str] = "representative-region"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[RepresentativeRegionConfig]] = RepresentativeRegionConfig
    unit_name: ClassVar[str] = "region"

    def plan(self, slide: Slide, tissue: TissueMask, notes: list[str]) -> list[TileSpec]:
        cfg = self.config
        window = self.window(slide, notes)
        if window is None:
            return []
        scale, extent, fitted = window
        bbox = tissue.bbox()
        if bbox is None:
            notes.append(f"slide {slide.slide_id}: no tissue detected; no region kept")
            return []
        step = cfg.stride * scale.downsample * (fitted / extent)
        centres = (bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2)
        starts = []
        for length, centre in zip((slide.width, slide.height), centres):
            if fitted > length:
                starts.append(np.array([int(np.floor(centred_start(centre, fitted, length)))]))
            else:
                starts.append(axis_starts(length, fitted, step))
        gx, gy = (a.ravel() for a in np.meshgrid(*starts))
        tissue_fraction = tissue.fractions(gx, gy, fitted, fitted)
        if cfg.score == "tissue":
            scores = tissue_fraction
        else:
            scores = dark_tissue_scores(tissue, gx, gy, fitted)
        best = int(np.argmax(scores))
        if tissue_fraction[best] <= 0:
            notes.append(f"slide {slide.slide_id}: no window contains tissue; no region kept")
            return []
        x, y = int(gx[best]), int(gy[best])
        return [TileSpec(x=x, y=y, extent=fitted, out_size=cfg.size, kind="region",
                         tissue=float(tissue_fraction[best]), score=float(scores[best]),
                         padded=is_padded(x, y, fitted, slide))]
