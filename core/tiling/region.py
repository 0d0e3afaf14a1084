"""``region``: large tissue regions kept downsampled, with addressable sub-patches (POMP, HC-MAE).

The slide's tissue bounding box is covered by non-overlapping ``size`` px regions at the target
magnification (4096 px at 20x), laid out as a grid centred on the tissue; a region is kept when
at least ``min_tissue`` of it is tissue. Each region's pixels are kept at ``out_size`` (256 px:
16x downsampled, the POMP/HC-MAE region thumbnail). Its (size / subpatch_size)^2 sub-patches
(256 of 256 px at full resolution) are addressable with :func:`subpatch_grid`, and are emitted
as their own records (kind ``subpatch``) with ``subpatches = true``, for hierarchical methods.

If no region reaches ``min_tissue`` but the slide has tissue (small slides, where one region
overhangs the slide), the region with the most tissue is kept and a warning says so.
``max_regions`` caps the count (POMP keeps <= 300, HC-MAE <= 512 darkest first) by ``rank_by``,
where "darkest" is the dark-tissue score of ``representative-region``.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
from pydantic import model_validator

from ..config import Field
from ..slides.reader import Slide
from ..slides.tissue import TissueMask
from .base import Tiler, TilerConfig, centred_start, dark_tissue_scores, is_padded
from .records import TileSpec


def subpatch_grid(x: float, y: float, extent: float, size: int = 4096,
                  subpatch_size: int = 256) -> tuple[np.ndarray, float]:
    """Level-0 top-left corners (n*n, 2) of a region's sub-patches in row-major order, and the
    sub-patch edge in level-0 px. Sub-patch j is at row j // n, column j % n (n = size/sub)."""
    n = size // subpatch_size
    sub_extent = extent / n
    cols, rows = np.meshgrid(np.arange(n), np.arange(n))
    xs = np.floor(x + cols.ravel() * sub_extent + 1e-9).astype(np.int64)
    ys = np.floor(y + rows.ravel() * sub_extent + 1e-9).astype(np.int64)
    return np.stack([xs, ys], axis=1), sub_extent


class RegionConfig(TilerConfig):
    size: int = Field(4096, ge=1, description="region edge in pixels at the target resolution")
    magnification: float | Literal["native"] = Field(20.0, description=(
        "target magnification (10 um / magnification = mpp); 'native' = level-0 pixels"))
    out_size: int = Field(256, ge=1, description=(
        "edge of the kept region pixels (4096 -> 256 = 16x downsampled)"))
    min_tissue: float = Field(0.25, ge=0.0, le=1.0, description=(
        "keep a region when at least this fraction of it is tissue"))
    keep_best: bool = Field(True, description=(
        "when no region reaches min_tissue but there is tissue, keep the one with most tissue"))
    max_regions: int = Field(0, ge=0, description="keep at most this many regions (0 = all)")
    rank_by: Literal["raster", "darkest", "tissue"] = Field("raster", description=(
        "order of the kept regions (and which survive max_regions): raster order, darkest "
        "tissue first, or most tissue first"))
    subpatch_size: int = Field(256, ge=1, description="edge of a region's sub-patches (target px)")
    subpatches: bool = Field(False, description=(
        "also emit every sub-patch as a record (kind 'subpatch', full resolution)"))
    pixels: Literal["none", "jpeg", "png"] = Field("jpeg", description=(
        "store region (and sub-patch) pixels as JPEG or PNG bytes ('none' = coordinates only)"))

    @model_validator(mode="after")
    def _check_subpatch(self) -> "RegionConfig":
        if self.size % self.subpatch_size:
            raise ValueError(f"subpatch_size ({self.subpatch_size}) must divide size ({self.size})")
        return self


class RegionTiler(Tiler):
    """Tissue regions (4096 px at 20x) kept at 256 px, with 256 addressable sub-patches (POMP, HC-MAE)."""

    name: ClassVar[str] = "region"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[RegionConfig]] = RegionConfig
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
        starts = []
        for length, b0, blen in ((slide.width, bbox[0], bbox[2]), (slide.height, bbox[1], bbox[3])):
            count = max(1, math.ceil(blen / fitted - 1e-9))
            first = centred_start(b0 + blen / 2, count * fitted, length)
            starts.append(np.floor(first + np.arange(count) * fitted + 1e-9).astype(np.int64))
        gx, gy = (a.ravel() for a in np.meshgrid(*starts))
        fractions = tissue.fractions(gx, gy, fitted, fitted)
        dark = dark_tissue_scores(tissue, gx, gy, fitted)
        keep = np.flatnonzero(fractions >= max(cfg.min_tissue, 1e-12))
        if keep.size == 0:
            best = int(np.argmax(fractions))
            if fractions[best] <= 0 or not cfg.keep_best:
                notes.append(f"slide {slide.slide_id}: no region has tissue >= {cfg.min_tissue}; "
                             "no region kept")
                return []
            notes.append(f"slide {slide.slide_id}: no region has tissue >= {cfg.min_tissue}; "
                         f"kept the one with most tissue ({fractions[best]:.2f}) (keep_best)")
            keep = np.array([best])
        if cfg.rank_by != "raster":
            key = dark if cfg.rank_by == "darkest" else fractions
            keep = keep[np.argsort(-key[keep], kind="stable")]
        if cfg.max_regions and keep.size > cfg.max_regions:
            keep = keep[: cfg.max_regions]
            if cfg.rank_by == "raster":
                notes.append(f"slide {slide.slide_id}: max_regions={cfg.max_regions} with "
                             "rank_by=raster keeps the first regions in raster order")
        specs = []
        for i in keep:
            x, y = int(gx[i]), int(gy[i])
            specs.append(TileSpec(
                x=x, y=y, extent=fitted, out_size=cfg.out_size, kind="region",
                tissue=float(fractions[i]), score=float(dark[i]),
                padded=is_padded(x, y, fitted, slide)))
        if cfg.subpatches:
            specs += self._subpatches(slide, tissue, specs)
        return specs

    def _subpatches(self, slide: Slide, tissue: TissueMask, regions: list[TileSpec]) -> list[TileSpec]:
        cfg = self.config
        children = []
        for parent, region in enumerate(regions):
            corners, sub_extent = subpatch_grid(region.x, region.y, region.extent, cfg.size,
                                                cfg.subpatch_size)
            fractions = tissue.fractions(corners[:, 0], corners[:, 1], sub_extent, sub_extent)
            for j, ((x, y), f) in enumerate(zip(corners, fractions)):
                children.append(TileSpec(
                    x=int(x), y=int(y), extent=sub_extent, out_size=cfg.subpatch_size,
                    kind="subpatch", parent_index=parent, sub_index=j, tissue=float(f),
                    score=float(f), padded=is_padded(x, y, sub_extent, slide)))
        return children
