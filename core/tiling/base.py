"""The tiler contract: plan tiles on one slide, then read and encode their pixels if asked.

A tiler is a ``pmx.Component`` of kind ``tiler``. It implements :meth:`Tiler.plan`, which gets
an open slide and its tissue mask and returns :class:`TileSpec`s (level-0 boxes with scores);
:meth:`Tiler.tile` turns them into records (and pixels). Geometry shared by the built-in tilers
lives here: the target scale, the small-slide policy, and tissue-centred window placement.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..components import Component
from ..config import ComponentConfig, Field
from ..errors import DataError
from ..slides.reader import Slide
from ..slides.tissue import (TissueConfig, TissueMask, box_means, darkness, detect_tissue,
                             summed_area)
from ..slides.units import mpp_to_magnification, target_mpp
from .boxes import box_of, plan_box, read_box, read_box_image
from .encode import encode_pixels
from .records import TileSpec, records_table

#: a requested pixel size this much finer than the slide's counts as upsampling (warned)
UPSAMPLE_TOLERANCE = 0.05


class TilerConfig(ComponentConfig):
    """Settings every built-in tiler shares."""

    size: int = Field(256, ge=1, description="tile edge in pixels at the target resolution")
    magnification: float | Literal["native"] = Field(20.0, description=(
        "target magnification (10 um / magnification = mpp); 'native' = level-0 pixels"))
    mpp: float | None = Field(None, gt=0, description=(
        "target pixel size in um/px; overrides magnification when set"))
    pixels: Literal["none", "jpeg", "png"] = Field("none", description=(
        "store tile pixels as JPEG or PNG bytes ('none' = coordinates only)"))
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality when pixels = 'jpeg'")
    small_slide: Literal["pad", "shrink", "skip", "error"] = Field("pad", description=(
        "slide smaller than one tile/region: pad with white at the same scale, shrink (resample "
        "the largest square that fits), skip the slide, or error; always warned"))
    tissue: TissueConfig = Field(default_factory=TissueConfig, description="tissue detection")


@dataclass
class SlideTiles:
    """One slide's result: records (arrow), warnings for the user, and timing."""

    slide_id: str
    records: pa.Table
    notes: list[str] = field(default_factory=list)
    tissue_fraction: float = 0.0
    seconds: float = 0.0

    @property
    def n_tiles(self) -> int:
        return self.records.num_rows


@dataclass(frozen=True)
class Scale:
    """How the tiler's pixels relate to level 0 on one slide."""

    downsample: float  # level-0 px per target px
    mpp: float | None  # target pixel size (None when the slide has no mpp and tiling is native)


class Tiler(Component):
    """Base class of tilers (kind ``tiler``); subclasses implement :meth:`plan`."""

    kind: ClassVar[str] = "tiler"
    Config: ClassVar[type[ComponentConfig]] = TilerConfig
    #: word used in messages for one output unit ("tile", "region")
    unit_name: ClassVar[str] = "tile"
    #: threads for slide reads during the current :meth:`tile` call
    _threads: int = 1

    # -- to implement --------------------------------------------------------------------------
    def plan(self, slide: Slide, tissue: TissueMask, notes: list[str]) -> list[TileSpec]:
        """Tiles of one slide, in output order; append user-facing warnings to ``notes``."""
        raise NotImplementedError

    # -- shared geometry -----------------------------------------------------------------------
    def scale(self, slide: Slide) -> Scale:
        cfg = self.config
        wanted = target_mpp(cfg.magnification, cfg.mpp)
        if wanted is None:
            return Scale(1.0, slide.mpp)
        base = slide.require_mpp(f"tiler '{self.name}' ({cfg.size} px at {wanted:g} um/px)")
        return Scale(wanted / base, wanted)

    def check_upsampling(self, slide: Slide, scale: Scale, notes: list[str]) -> None:
        if scale.downsample < 1.0 - UPSAMPLE_TOLERANCE:
            notes.append(
                f"slide {slide.slide_id}: asked for {scale.mpp:g} um/px but the slide's finest "
                f"level is {slide.mpp:g} um/px; tiles are upsampled {1 / scale.downsample:.2f}x")

    def window(self, slide: Slide, notes: list[str]) -> tuple[Scale, float, float] | None:
        """Scale, requested level-0 extent and the extent after the small-slide policy.

        Every tiler starts its plan here so the upsampling warning and the small-slide policy
        behave the same way for all of them; None means the slide is skipped.
        """
        scale = self.scale(slide)
        self.check_upsampling(slide, scale, notes)
        extent = self.config.size * scale.downsample
        fitted = self.fit_extent(slide, extent, notes)
        if fitted is None:
            return None
        return scale, extent, fitted

    def fit_extent(self, slide: Slide, extent: float, notes: list[str]) -> float | None:
        """Apply the small-slide policy to a square of ``extent`` level-0 px (None = skip)."""
        if extent <= slide.width and extent <= slide.height:
            return extent
        cfg = self.config
        what = (f"slide {slide.slide_id} ({slide.path.name}) is {slide.width}x{slide.height} px "
                f"at level 0, smaller than one {self.unit_name} ({cfg.size} px at "
                f"{self._resolution_text(slide)} = {extent:.0f} level-0 px)")
        policy = cfg.small_slide
        if policy == "error":
            raise DataError(
                f"{what}. Fix: --set small_slide=pad (white padding, same scale), "
                "small_slide=shrink (resample the largest square that fits) or small_slide=skip, "
                "or tile at a lower magnification / smaller size.")
        if policy == "skip":
            notes.append(f"{what}; slide skipped (small_slide=skip)")
            return None
        if policy == "shrink":
            shrunk = float(min(slide.width, slide.height))
            eff = f" = {slide.mpp * shrunk / cfg.size:.3g} um/px" if slide.mpp else ""
            notes.append(f"{what}; shrunk to {shrunk:.0f} level-0 px{eff} (small_slide=shrink)")
            return shrunk
        notes.append(f"{what}; padded with white outside the slide (small_slide=pad)")
        return extent

    def _resolution_text(self, slide: Slide) -> str:
        wanted = target_mpp(self.config.magnification, self.config.mpp)
        return "level-0 resolution" if wanted is None else f"{wanted:g} um/px"

    # -- running -------------------------------------------------------------------------------
    def tile(self, slide: Slide, tissue: TissueMask | None = None,
             patient_id: str | None = None, threads: int = 1) -> SlideTiles:
        """Plan, read and encode one slide's tiles; ``threads`` > 1 reads tiles concurrently
        (OpenSlide, Pillow's resize and JPEG/PNG encoders release the GIL)."""
        start = time.perf_counter()
        self._threads = max(1, int(threads))
        notes: list[str] = []
        if tissue is None:
            tissue = detect_tissue(slide, self.config.tissue)
        specs = self.plan(slide, tissue, notes)
        if not specs and not notes:
            notes.append(f"slide {slide.slide_id}: no {self.unit_name} passed the filters "
                         f"(tissue covers {tissue.tissue_fraction:.1%} of the slide)")
        fingerprint = self.fingerprint

        def record(item: tuple[int, TileSpec]) -> dict[str, Any]:
            return self._record(slide, item[1], item[0], fingerprint, patient_id)

        items = list(enumerate(specs))
        reads = self.config.pixels != "none"  # only pixel reads are worth threads
        rows = self.map_reads(record, items) if reads else [record(item) for item in items]
        return SlideTiles(slide.slide_id, records_table(rows), notes, tissue.tissue_fraction,
                          time.perf_counter() - start)

    def map_reads(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``[func(item) for item in items]``, on ``threads`` threads when set by :meth:`tile`
        (for functions that read the slide: OpenSlide handles are thread-safe)."""
        if self._threads <= 1 or len(items) < 2:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=self._threads) as pool:
            return list(pool.map(func, items))

    def _record(self, slide: Slide, spec: TileSpec, index: int, fingerprint: str,
                patient_id: str | None) -> dict[str, Any]:
        # the exact read (level, size at that level, out_size) is stored with the tile, and the
        # pixels below come from that same read, so every reader reproduces them (see boxes)
        box = plan_box(slide, spec.x, spec.y, spec.extent, spec.out_size)
        mpp = slide.mpp * spec.extent / spec.out_size if slide.mpp else None
        pixels = fmt = None
        if self.config.pixels != "none":
            image = spec.image
            if image is None or image.shape[0] != spec.out_size:
                image = read_box_image(slide, box)
            pixels = encode_pixels(image, self.config.pixels, self.config.jpeg_quality)
            fmt = self.config.pixels
        return {
            "slide_id": slide.slide_id,
            "patient_id": patient_id,
            "tiler": fingerprint,
            "tiler_name": self.name,
            "tile_index": index,
            "kind": spec.kind,
            "parent_index": spec.parent_index,
            "sub_index": spec.sub_index,
            "level": box.level,
            "x": box.x,
            "y": box.y,
            "size": box.size,
            "extent": float(spec.extent),
            "mpp": mpp,
            "magnification": mpp_to_magnification(mpp) if mpp else None,
            "out_size": box.out_size,
            "tissue": float(spec.tissue),
            "score": float(spec.score),
            "padded": bool(spec.padded),
            "pixels": pixels,
            "pixel_format": fmt,
        }


# -- helpers shared by the built-in tilers ---------------------------------------------------
def is_padded(x: Any, y: Any, extent: float, slide: Slide) -> Any:
    """Whether a level-0 box of edge ``extent`` at (x, y) reaches outside the slide (half a
    pixel of rounding allowed); a bool for scalars, a bool array for arrays of corners."""
    x, y = np.asarray(x), np.asarray(y)
    outside = ((x < 0) | (y < 0) | (x + extent > slide.width + 0.5)
               | (y + extent > slide.height + 0.5))
    return bool(outside) if outside.ndim == 0 else outside


def centred_start(centre: Any, extent: float, length: float) -> Any:
    """Start of a window of ``extent`` centred on ``centre`` and kept inside [0, length] when it
    fits, else covering the whole axis symmetrically-as-possible (the rest is padding); a float
    for a scalar centre, an array for an array of centres."""
    low, high = min(0.0, length - extent), max(0.0, length - extent)
    start = np.clip(np.asarray(centre, dtype=np.float64) - extent / 2.0, low, high)
    return float(start) if start.ndim == 0 else start


def axis_starts(length: float, extent: float, step: float, partial: bool = False) -> np.ndarray:
    """Window starts floor(i * step) whose window lies inside [0, length]; with ``partial`` also
    the ones that start inside but run past the end (to be padded)."""
    if partial:
        count = int(math.ceil(length / step - 1e-9))
    elif extent > length + 1e-6:
        return np.zeros(0, dtype=np.int64)
    else:
        count = int(math.floor((length - extent) / step + 1e-9)) + 1
    return np.floor(np.arange(max(count, 0)) * step + 1e-9).astype(np.int64)


def dark_tissue_scores(tissue: TissueMask, x: np.ndarray, y: np.ndarray, extent: float) -> np.ndarray:
    """Dark-tissue score of square level-0 windows of edge ``extent`` at (x, y): the mean over
    the window's mask pixels of tissue x darkness, i.e. tissue fraction x mean darkness in the
    tissue (how ``representative-region`` picks its region and ``region`` ranks "darkest")."""
    if tissue.thumbnail is None:
        raise ValueError("dark-tissue scores need the tissue mask's thumbnail")
    weight = tissue.mask.astype(np.float64) * darkness(tissue.thumbnail).astype(np.float64)
    boxes = tissue.to_mask_boxes(x, y, np.full(np.shape(x), extent), np.full(np.shape(y), extent))
    return box_means(summed_area(weight), *boxes)


def read_tile(slide: Slide, record: Mapping[str, Any]) -> np.ndarray:
    """Pixels of a tile record or a row of the store's ``tiles`` table (RGB uint8,
    ``out_size`` square), read from the slide exactly as the tiler read them: ``size`` px at
    ``level``, resized to ``out_size`` when they differ (see :mod:`pmx.tiling.boxes`)."""
    return read_box(slide, box_of(record))
