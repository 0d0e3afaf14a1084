"""Tissue detection: Otsu on the HSV saturation of a low-resolution thumbnail.

H&E tissue is stained (saturated), glass is white or grey (unsaturated), so a global Otsu
threshold on saturation separates them, as in CLAM and impuTMAE. The raw threshold mask is then
cleaned: a median filter before thresholding removes JPEG noise, a closing bridges gaps between
nuclei and stroma, an opening and a minimum object area drop dust and specks. The mask keeps its
mapping to level-0 pixels so any box can be scored by its tissue fraction in O(1) through a
summed-area table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from ..config import ComponentConfig, Field
from .reader import Slide

#: Pixel size assumed for area thresholds when a slide has no mpp (only the clean-up uses it).
ASSUMED_MPP = 0.5


class TissueConfig(ComponentConfig):
    """How the tissue mask is computed (shared by every tiler)."""

    thumbnail_mpp: float = Field(8.0, gt=0, description=(
        "pixel size of the analysis thumbnail in um/px (8 ~ 1.25x); masks and "
        "thumbnail-based scores are computed at this resolution"))
    fallback_downsample: float = Field(16.0, ge=1, description=(
        "thumbnail downsample (level-0 px per thumbnail px) for slides without an mpp"))
    max_side: int = Field(8192, ge=64, description=(
        "cap on the thumbnail's longest side; a coarser thumbnail is used beyond it"))
    median_size: int = Field(7, ge=0, description=(
        "median filter size (thumbnail px, odd) applied to saturation before Otsu; 0 = none"))
    min_saturation: int = Field(20, ge=0, le=255, description=(
        "floor on the Otsu threshold (0-255), so a blank slide yields no tissue"))
    close_radius: int = Field(2, ge=0, description="radius (thumbnail px) of the closing")
    open_radius: int = Field(1, ge=0, description="radius (thumbnail px) of the opening")
    min_object_um2: float = Field(10000.0, ge=0, description=(
        "tissue pieces smaller than this area (um^2) are dropped"))
    fill_holes_um2: float = Field(2500.0, ge=0, description=(
        "holes inside tissue smaller than this area (um^2) are filled"))


def otsu_threshold(values: np.ndarray) -> int:
    """Otsu's threshold of uint8 values: t maximising between-class variance of {<=t, >t}."""
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0
    bins = np.arange(256, dtype=np.float64)
    weight0 = np.cumsum(hist)
    weight1 = total - weight0
    sum0 = np.cumsum(hist * bins)
    mean0 = sum0 / np.maximum(weight0, 1e-12)
    mean1 = (sum0[-1] - sum0) / np.maximum(weight1, 1e-12)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    between[(weight0 == 0) | (weight1 == 0)] = -1.0
    return int(np.argmax(between))


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx * xx + yy * yy) <= radius * radius


def _remove_small(mask: np.ndarray, min_pixels: float) -> np.ndarray:
    if min_pixels <= 1 or not mask.any():
        return mask
    labels, count = ndimage.label(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


def _fill_small_holes(mask: np.ndarray, max_pixels: float) -> np.ndarray:
    if max_pixels <= 0:
        return mask
    holes = ndimage.binary_fill_holes(mask) & ~mask
    if not holes.any():
        return mask
    labels, count = ndimage.label(holes)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    small = sizes <= max_pixels
    small[0] = False
    return mask | small[labels]


def saturation_value(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HSV saturation and value (uint8, 0-255 as in PIL/OpenCV) of an RGB uint8 image."""
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"))
    return hsv[..., 1], hsv[..., 2]


def darkness(rgb: np.ndarray) -> np.ndarray:
    """1 - mean(R, G, B) / 255 per pixel: 0 for white glass, towards 1 for dense stain."""
    return 1.0 - rgb.astype(np.float32).mean(axis=-1) / 255.0


@dataclass
class TissueMask:
    """A boolean tissue mask over the slide plus its mapping to level-0 pixels."""

    mask: np.ndarray
    downsample_x: float
    downsample_y: float
    threshold: int
    slide_width: int
    slide_height: int
    thumbnail: np.ndarray | None = None
    mask_mpp: float | None = None
    _integral: np.ndarray | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape  # type: ignore[return-value]

    @property
    def tissue_fraction(self) -> float:
        """Share of the slide area that is tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def integral(self) -> np.ndarray:
        if self._integral is None:
            self._integral = summed_area(self.mask.astype(np.float64))
        return self._integral

    def to_mask_boxes(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Level-0 boxes -> integer mask-pixel boxes (at least one pixel wide)."""
        x0 = np.rint(np.asarray(x, dtype=np.float64) / self.downsample_x).astype(np.int64)
        y0 = np.rint(np.asarray(y, dtype=np.float64) / self.downsample_y).astype(np.int64)
        x1 = np.rint((np.asarray(x, dtype=np.float64) + w) / self.downsample_x).astype(np.int64)
        y1 = np.rint((np.asarray(y, dtype=np.float64) + h) / self.downsample_y).astype(np.int64)
        return x0, y0, np.maximum(x1, x0 + 1), np.maximum(y1, y0 + 1)

    def fractions(self, x: np.ndarray, y: np.ndarray, w: np.ndarray | float,
                  h: np.ndarray | float) -> np.ndarray:
        """Tissue fraction of each level-0 box (parts outside the slide count as background)."""
        x0, y0, x1, y1 = self.to_mask_boxes(x, y, np.broadcast_to(w, np.shape(x)),
                                            np.broadcast_to(h, np.shape(y)))
        return box_means(self.integral, x0, y0, x1, y1)

    def fraction(self, x: float, y: float, w: float, h: float) -> float:
        return float(self.fractions(np.array([x]), np.array([y]), w, h)[0])

    def bbox(self) -> tuple[float, float, float, float] | None:
        """Level-0 (x, y, w, h) of all tissue, or None when there is none."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        if rows.size == 0:
            return None
        x0, x1 = cols[0] * self.downsample_x, (cols[-1] + 1) * self.downsample_x
        y0, y1 = rows[0] * self.downsample_y, (rows[-1] + 1) * self.downsample_y
        x1, y1 = min(x1, self.slide_width), min(y1, self.slide_height)
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)

    def as_image(self) -> Image.Image:
        """The mask as a black/white PNG-able image (white = tissue)."""
        return Image.fromarray((self.mask.astype(np.uint8) * 255), mode="L")

    def overlay(self) -> Image.Image:
        """The thumbnail with tissue tinted green and background dimmed, for eyeballing."""
        if self.thumbnail is None:
            return self.as_image().convert("RGB")
        rgb = self.thumbnail.astype(np.float32)
        tint = np.array([40, 200, 60], dtype=np.float32)
        out = np.where(self.mask[..., None], 0.6 * rgb + 0.4 * tint, 0.5 * rgb)
        return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def summed_area(image: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero first row/column: S[i, j] = sum(image[:i, :j])."""
    table = np.zeros((image.shape[0] + 1, image.shape[1] + 1), dtype=np.float64)
    np.cumsum(np.cumsum(image, axis=0), axis=1, out=table[1:, 1:])
    return table


def box_means(table: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray,
              y1: np.ndarray) -> np.ndarray:
    """Mean of the image under each box [x0, x1) x [y0, y1); outside the image counts as 0."""
    height, width = table.shape[0] - 1, table.shape[1] - 1
    area = ((x1 - x0) * (y1 - y0)).astype(np.float64)
    cx0, cx1 = np.clip(x0, 0, width), np.clip(x1, 0, width)
    cy0, cy1 = np.clip(y0, 0, height), np.clip(y1, 0, height)
    total = table[cy1, cx1] - table[cy0, cx1] - table[cy1, cx0] + table[cy0, cx0]
    return np.where(area > 0, total / np.maximum(area, 1.0), 0.0)


def thumbnail_downsample(slide: Slide, config: TissueConfig) -> float:
    if slide.mpp is not None:
        downsample = max(1.0, config.thumbnail_mpp / slide.mpp)
    else:
        downsample = config.fallback_downsample
    longest = max(slide.width, slide.height)
    return max(downsample, longest / config.max_side, 1.0)


def detect_tissue(slide: Slide, config: TissueConfig | None = None,
                  keep_thumbnail: bool = True) -> TissueMask:
    """Tissue mask of a slide (see the module docstring for the steps)."""
    config = config or TissueConfig()
    downsample = thumbnail_downsample(slide, config)
    thumb = slide.thumbnail(downsample)
    return mask_from_thumbnail(thumb, slide.width, slide.height, config,
                               mask_mpp=(slide.mpp * downsample if slide.mpp else None),
                               keep_thumbnail=keep_thumbnail)


def mask_from_thumbnail(thumb: np.ndarray, slide_width: int, slide_height: int,
                        config: TissueConfig | None = None, mask_mpp: float | None = None,
                        keep_thumbnail: bool = True) -> TissueMask:
    config = config or TissueConfig()
    saturation, _ = saturation_value(thumb)
    if config.median_size > 1:
        size = config.median_size | 1  # Pillow's median filter needs an odd size
        saturation = np.asarray(Image.fromarray(saturation).filter(ImageFilter.MedianFilter(size)))
    threshold = max(otsu_threshold(saturation), config.min_saturation)
    mask = saturation > threshold
    if config.close_radius > 0:
        # pad so that tissue touching the border is not eroded away by the closing
        r = config.close_radius
        mask = ndimage.binary_closing(np.pad(mask, r, mode="edge"), structure=_disk(r))[r:-r, r:-r]
    if config.open_radius > 0:
        mask = ndimage.binary_opening(mask, structure=_disk(config.open_radius))
    # side of one mask pixel in um (0.5 um/px at level 0 assumed when the slide has no mpp)
    pixel_side = mask_mpp if mask_mpp else ASSUMED_MPP * slide_width / max(thumb.shape[1], 1)
    pixel_area = pixel_side * pixel_side
    mask = _fill_small_holes(mask, config.fill_holes_um2 / pixel_area)
    mask = _remove_small(mask, config.min_object_um2 / pixel_area)
    return TissueMask(
        mask=mask,
        downsample_x=slide_width / thumb.shape[1],
        downsample_y=slide_height / thumb.shape[0],
        threshold=int(threshold),
        slide_width=slide_width,
        slide_height=slide_height,
        thumbnail=thumb if keep_thumbnail else None,
        mask_mpp=mask_mpp,
    )


__all__ = [
    "TissueConfig",
    "TissueMask",
    "box_means",
    "darkness",
    "detect_tissue",
    "mask_from_thumbnail",
    "otsu_threshold",
    "saturation_value",
    "summed_area",
    "thumbnail_downsample",
]
