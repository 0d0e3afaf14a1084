"""The exact read behind a tile, so every reader gets the tiler's own pixels.

A tiler plans a tile as a level-0 square (``x``, ``y``, edge ``extent``) delivered as
``out_size`` pixels. It reads that square as ``size`` x ``size`` pixels at pyramid ``level``
(the coarsest level not coarser than ``extent / out_size``) and, when ``size != out_size``,
resizes the read to ``out_size`` with antialiased bilinear filtering (Pillow). Parts outside
the slide are white.

:class:`TileBox` is that read. The tiler stores it (``level``, ``x``, ``y``, ``size``,
``out_size`` columns of the records and of the store's ``tiles`` table) and every reader
(:func:`pmx.tiling.read_tile`, ``TileDataset``, the embedding workers) calls :func:`read_box`
with it, so a tile read back later is pixel-for-pixel what the tiler produced, whatever the
slide's pyramid, the target magnification or the small-slide policy (upsampling included).
Deriving the read from ``mpp`` or from a rounded edge instead would pick another read size
when the extent is fractional and resample differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from PIL import Image

from ..errors import DataError
from ..slides.reader import RESIZE_TOLERANCE, Slide


@dataclass(frozen=True)
class TileBox:
    """``size`` px read at ``level`` from level-0 (``x``, ``y``), resized to ``out_size`` px."""

    level: int
    x: int
    y: int
    size: int
    out_size: int

    @property
    def resampled(self) -> bool:
        return self.size != self.out_size


def plan_box(slide: Slide, x: int, y: int, extent: float, out_size: int) -> TileBox:
    """The read a tiler does for a level-0 square of ``extent`` kept at ``out_size`` px.

    Same rule as :meth:`Slide.read_box`: the nearest finer level; the read is exactly
    ``out_size`` when the level's pixels are within the resize tolerance of the output
    pixels (no resampling), else ``ceil(extent / level downsample)`` pixels, resized.
    """
    level = slide.best_level(extent / out_size)
    edge = extent / slide.level_downsamples[level]
    if abs(edge / out_size - 1.0) < RESIZE_TOLERANCE:
        size = int(out_size)
    else:
        size = max(1, int(math.ceil(edge - 1e-6)))
    return TileBox(int(level), int(x), int(y), size, int(out_size))


def read_box_image(slide: Slide, box: TileBox) -> Image.Image:
    """The tile's pixels as an RGB PIL image (``out_size`` square)."""
    if not 0 <= box.level < slide.level_count:
        raise DataError(f"slide {slide.slide_id} ({slide.path}) has {slide.level_count} level(s); "
                        f"a tile says level {box.level}: the tile records belong to another file. "
                        "Re-tile the slide (pmx tile --force).")
    image = Image.fromarray(slide.read_level(box.x, box.y, box.level, box.size, box.size))
    if box.resampled:
        image = image.resize((box.out_size, box.out_size), Image.Resampling.BILINEAR)
    return image


def read_box(slide: Slide, box: TileBox) -> np.ndarray:
    """The tile's pixels as RGB uint8 (``out_size``, ``out_size``, 3)."""
    return np.asarray(read_box_image(slide, box))


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else int(value)


def box_of(record: Mapping[str, Any]) -> TileBox:
    """The :class:`TileBox` of a tile record or a row of the store's ``tiles`` table.

    ``out_size`` null (rows written by hand or imported without it) means the tile is its
    ``size`` px at ``level``, not resampled.
    """
    size = _int_or_none(record.get("size"))
    where = f"tile ({record.get('x')}, {record.get('y')}) of slide {record.get('slide_id')}"
    if size is None or size <= 0:
        raise DataError(f"{where} has no read size ('size' column); re-tile the slide")
    out = _int_or_none(record.get("out_size"))
    return TileBox(int(record["level"]), int(record["x"]), int(record["y"]), size,
                   out if out else size)
