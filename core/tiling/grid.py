"""``grid``: a regular grid of tiles at a target magnification, kept where there is tissue.

The CLAM convention used by CMTA: 256 px tiles at 20x (0.5 um/px), no overlap, a tile kept when
tissue covers at least ``min_tissue`` of it (0.25 ~ CLAM's "any of four points inside the
contour" rule). The grid starts at the slide's top-left corner; partial tiles at the right and
bottom edges are dropped unless ``edge = "pad"``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import model_validator

from ..config import Field
from ..slides.reader import Slide
from ..slides.tissue import TissueMask
from .base import Tiler, TilerConfig, axis_starts, centred_start, is_padded
from .records import TileSpec


class GridConfig(TilerConfig):
    size: int = Field(256, ge=1, description="tile edge in pixels at the target resolution")
    magnification: float | Literal["native"] = Field(20.0, description=(
        "target magnification (10 um / magnification = mpp); 'native' = level-0 pixels"))
    stride: int | None = Field(None, ge=1, description=(
        "step between tiles in target pixels; default size - overlap"))
    overlap: int = Field(0, ge=0, description="overlap between neighbouring tiles in target px")
    min_tissue: float = Field(0.25, ge=0.0, le=1.0, description=(
        "keep a tile when at least this fraction of it is tissue (0 keeps every tile)"))
    edge: Literal["drop", "pad"] = Field("drop", description=(
        "partial tiles at the right/bottom edges: drop them, or keep them padded with white"))

    @model_validator(mode="after")
    def _check_overlap(self) -> "GridConfig":
        if self.stride is None and self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self

    @property
    def step(self) -> int:
        return self.stride if self.stride is not None else self.size - self.overlap


class GridTiler(Tiler):
    """Regular grid of tiles at a target magnification, filtered by tissue (CLAM/CMTA style)."""

    name: ClassVar[str] = "grid"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[GridConfig]] = GridConfig

    def plan(self, slide: Slide, tissue: TissueMask, notes: list[str]) -> list[TileSpec]:
        cfg = self.config
        window = self.window(slide, notes)
        if window is None:
            return []
        scale, extent, fitted = window
        step = cfg.step * scale.downsample * (fitted / extent)
        starts = []
        for length in (slide.width, slide.height):
            if fitted > length:  # small slide, small_slide=pad: one tile centred on the slide
                starts.append(np.array([int(np.floor(centred_start(length / 2, fitted, length)))]))
            else:
                starts.append(axis_starts(length, fitted, step, partial=cfg.edge == "pad"))
        xs, ys = starts
        if xs.size == 0 or ys.size == 0:
            return []
        gx, gy = np.meshgrid(xs, ys)  # raster order: rows of y, x inside
        gx, gy = gx.ravel(), gy.ravel()
        fractions = tissue.fractions(gx, gy, fitted, fitted)
        keep = fractions >= cfg.min_tissue if cfg.min_tissue > 0 else np.ones_like(fractions, bool)
        padded = is_padded(gx, gy, fitted, slide)
        return [
            TileSpec(x=int(x), y=int(y), extent=fitted, out_size=cfg.size, tissue=float(f),
                     score=float(f), padded=bool(p))
            for x, y, f, p in zip(gx[keep], gy[keep], fractions[keep], padded[keep])
        ]
