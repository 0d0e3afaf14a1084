"""One whole-slide image opened through OpenSlide, with its physical pixel size resolved.

Everything downstream (tissue masks, tilers, encoders) addresses a slide in level-0 pixel
coordinates plus a target pixel size (mpp), and reads through :meth:`Slide.read`, which takes
the nearest finer pyramid level and resizes. Errors a user can cause (missing, truncated or
unsupported files, a slide without a pixel size when one is needed) become ``DataError``s that
name the file, the reason and the fix.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openslide
from PIL import Image

from ..errors import DataError
from .units import mpp_to_magnification

#: File name endings OpenSlide can read (used when a folder of slides is given).
SLIDE_EXTENSIONS: tuple[str, ...] = (
    ".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif",
    ".dcm", ".czi",
)

#: A pyramid level counts as "finer" than a requested downsample up to this relative slack, so
#: a level at downsample 4.002 serves a request for 4.0 instead of falling back to level 0.
LEVEL_TOLERANCE = 0.01

#: Reads whose level pixel count differs from the requested output by less than this relative
#: amount are returned as read (no resample): 256 px at 0.499 um/px stand in for 256 px at 0.5.
RESIZE_TOLERANCE = 0.01

#: Pixels of one read above which thumbnails are built block by block (bounded memory).
_MAX_PIXELS_ONE_READ = 32 * 1024 * 1024
_BLOCK = 4096

_RESOLUTION_UNITS_UM = {"centimeter": 1e4, "inch": 25400.0, "millimeter": 1e3, "micrometer": 1.0}


@dataclass(frozen=True)
class LevelInfo:
    level: int
    width: int
    height: int
    downsample: float
    mpp: float | None


@dataclass(frozen=True)
class SlideInfo:
    """What ``pmx slide info`` prints and what the store's slides table records."""

    path: str
    slide_id: str
    vendor: str | None
    width: int
    height: int
    levels: tuple[LevelInfo, ...]
    mpp_x: float | None
    mpp_y: float | None
    mpp_source: str | None
    objective_power: float | None
    magnification: float | None
    file_size: int
    associated_images: tuple[str, ...]
    quickhash: str | None

    def as_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["levels"] = [asdict(level) for level in self.levels]
        payload["associated_images"] = list(self.associated_images)
        return payload


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def resolve_mpp(
    properties: dict[str, str], override: float | None = None
) -> tuple[float | None, float | None, str | None]:
    """(mpp_x, mpp_y, source) from, in order: the override, OpenSlide's mpp, the TIFF
    resolution tags, the objective power (10 um / magnification); (None, None, None) if none."""
    if override is not None:
        value = _float_or_none(override)
        if value is None:
            raise DataError(f"mpp override must be a positive number (got {override!r})")
        return value, value, "override"
    mpp_x = _float_or_none(properties.get("openslide.mpp-x"))
    mpp_y = _float_or_none(properties.get("openslide.mpp-y"))
    if mpp_x or mpp_y:
        return mpp_x or mpp_y, mpp_y or mpp_x, "openslide"
    unit = str(properties.get("tiff.ResolutionUnit", "")).lower()
    res_x = _float_or_none(properties.get("tiff.XResolution"))
    res_y = _float_or_none(properties.get("tiff.YResolution"))
    if unit in _RESOLUTION_UNITS_UM and (res_x or res_y):
        per_unit = _RESOLUTION_UNITS_UM[unit]
        mx = per_unit / (res_x or res_y)  # type: ignore[operator]
        my = per_unit / (res_y or res_x)  # type: ignore[operator]
        if 0.01 <= mx <= 100:  # a resolution of 72 dpi is a screen default, not a pixel size
            return mx, my, "tiff-resolution"
    power = _float_or_none(properties.get("openslide.objective-power"))
    if power is not None:
        mpp = 10.0 / power
        return mpp, mpp, "objective-power"
    return None, None, None


def _open(path: Path) -> openslide.OpenSlide:
    if not path.exists():
        raise DataError(f"slide file {path} does not exist; check the path (or the manifest's "
                        "slide path column)")
    if path.is_dir():
        raise DataError(f"slide path {path} is a folder, not a slide file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"slide file {path} cannot be read: {exc}") from None
    if size == 0:
        raise DataError(f"slide file {path} is empty (0 bytes); re-copy or re-download it")
    try:
        vendor = openslide.OpenSlide.detect_format(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure here is a bad file
        raise DataError(f"slide file {path} cannot be read: {exc}") from None
    try:
        return openslide.OpenSlide(str(path))
    except openslide.OpenSlideUnsupportedFormatError:
        raise DataError(
            f"slide file {path} ({size} bytes) is not a slide OpenSlide can read: unsupported "
            "format, or a truncated/corrupt file. Supported: Aperio .svs/.tif, Hamamatsu "
            ".ndpi/.vms, Leica .scn, MIRAX .mrxs, Philips/Ventana/generic tiled .tiff, DICOM, "
            "Zeiss .czi. Fix: check the file is complete (compare its size/checksum with the "
            "source) or convert it to a pyramidal TIFF."
        ) from None
    except openslide.OpenSlideError as exc:
        detected = f" (looks like {vendor})" if vendor else ""
        raise DataError(
            f"slide file {path}{detected} could not be opened by OpenSlide: {exc}. The file is "
            "probably truncated or corrupt; re-copy or re-download it."
        ) from None
    except OSError as exc:
        raise DataError(f"slide file {path} cannot be read: {exc}") from None


def _rgba_to_rgb_on_white(image: Image.Image) -> Image.Image:
    """OpenSlide returns RGBA with alpha 0 outside the scanned area; paint that white."""
    if image.getchannel("A").getextrema()[0] == 255:
        return image.convert("RGB")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image).convert("RGB")


class Slide:
    """An open slide: geometry, physical pixel size, and reads at any target mpp.

    Not picklable and not fork-safe: open it inside the process that reads it.
    """

    def __init__(self, path: str | os.PathLike[str], *, mpp: float | None = None,
                 slide_id: str | None = None) -> None:
        self.path = Path(path)
        self.slide_id = slide_id or self.path.stem
        self._osr = _open(self.path)
        self.properties: dict[str, str] = dict(self._osr.properties)
        self.mpp_x, self.mpp_y, self.mpp_source = resolve_mpp(self.properties, mpp)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        self._osr.close()

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Slide({str(self.path)!r}, {self.width}x{self.height}, levels={self.level_count}, "
                f"mpp={self.mpp_x}, source={self.mpp_source})")

    # -- geometry ------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return int(self._osr.dimensions[0])

    @property
    def height(self) -> int:
        return int(self._osr.dimensions[1])

    @property
    def level_count(self) -> int:
        return int(self._osr.level_count)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return tuple((int(w), int(h)) for w, h in self._osr.level_dimensions)

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return tuple(float(d) for d in self._osr.level_downsamples)

    @property
    def vendor(self) -> str | None:
        return self.properties.get("openslide.vendor")

    @property
    def objective_power(self) -> float | None:
        return _float_or_none(self.properties.get("openslide.objective-power"))

    @property
    def mpp(self) -> float | None:
        """Level-0 pixel size in um (x axis; scanners write square pixels)."""
        return self.mpp_x

    @property
    def magnification(self) -> float | None:
        """Level-0 magnification under the 10 um convention (the objective power if no mpp)."""
        if self.mpp_x:
            return mpp_to_magnification(self.mpp_x)
        return self.objective_power

    def require_mpp(self, why: str) -> float:
        """The level-0 mpp, or a DataError naming the slide and the ways to supply one."""
        if self.mpp_x is None:
            raise DataError(
                f"slide {self.slide_id} ({self.path}) has no pixel size: no openslide.mpp-x, "
                f"no TIFF resolution and no objective power; {why} needs one. Fix: give its "
                "mpp in the manifest's `mpp` column or in an --mpp-csv file (columns slide_id "
                "or path, and mpp), or configure the tiler in level-0 pixels with "
                "--set magnification=native."
            )
        return self.mpp_x

    def info(self) -> SlideInfo:
        levels = tuple(
            LevelInfo(level=i, width=w, height=h, downsample=ds,
                      mpp=(self.mpp_x * ds if self.mpp_x else None))
            for i, ((w, h), ds) in enumerate(zip(self.level_dimensions, self.level_downsamples))
        )
        return SlideInfo(
            path=str(self.path), slide_id=self.slide_id, vendor=self.vendor,
            width=self.width, height=self.height, levels=levels,
            mpp_x=self.mpp_x, mpp_y=self.mpp_y, mpp_source=self.mpp_source,
            objective_power=self.objective_power, magnification=self.magnification,
            file_size=self.path.stat().st_size,
            associated_images=tuple(sorted(self._osr.associated_images)),
            quickhash=self.properties.get("openslide.quickhash-1"),
        )

    def downsample_for(self, target_mpp: float | None) -> float:
        """Level-0 pixels per target pixel (1.0 for native resolution)."""
        if target_mpp is None:
            return 1.0
        return float(target_mpp) / self.require_mpp(f"reading at {target_mpp} um/px")

    def best_level(self, downsample: float) -> int:
        """The coarsest level no coarser than ``downsample`` (the nearest finer level)."""
        best = 0
        for level, ds in enumerate(self.level_downsamples):
            if ds <= downsample * (1.0 + LEVEL_TOLERANCE):
                best = level
        return best

    # -- reading -------------------------------------------------------------------------------
    def read_level(self, x: int, y: int, level: int, width: int, height: int) -> np.ndarray:
        """RGB uint8 (height, width, 3) at ``level``; (x, y) in level-0 pixels; outside = white."""
        return np.asarray(self._read_pil(x, y, level, width, height))

    def _read_pil(self, x: int, y: int, level: int, width: int, height: int) -> Image.Image:
        try:
            image = self._osr.read_region((int(x), int(y)), int(level), (int(width), int(height)))
        except openslide.OpenSlideError as exc:
            raise DataError(
                f"slide {self.slide_id} ({self.path}): reading level {level} at ({x}, {y}) size "
                f"{width}x{height} failed: {exc}. The file is probably truncated or corrupt; "
                "re-copy or re-download it."
            ) from None
        return _rgba_to_rgb_on_white(image)

    def read(self, x: int, y: int, size: int | tuple[int, int], target_mpp: float | None = None,
             out_size: int | tuple[int, int] | None = None) -> np.ndarray:
        """A ``size`` px square (or (w, h)) at ``target_mpp`` whose top-left is level-0 (x, y).

        ``target_mpp`` None means level-0 pixels. The result has ``out_size`` pixels when given
        (e.g. a 4096 px region kept at 256 px), else ``size``. Parts outside the slide are white.
        """
        w, h = (size, size) if isinstance(size, int) else size
        out = (w, h) if out_size is None else out_size
        ds0 = self.downsample_for(target_mpp)
        return self.read_box(x, y, (w * ds0, h * ds0), out)

    def read_box(self, x: int, y: int, extent: float | tuple[float, float],
                 out_size: int | tuple[int, int]) -> np.ndarray:
        """The level-0 box at (x, y) with edge ``extent`` (level-0 px), as ``out_size`` pixels.

        Reads the nearest finer pyramid level (the coarsest one whose downsample does not exceed
        level-0 px per output px) and resizes with antialiased bilinear filtering.
        """
        return np.asarray(self.read_box_image(x, y, extent, out_size))

    def read_box_image(self, x: int, y: int, extent: float | tuple[float, float],
                       out_size: int | tuple[int, int]) -> Image.Image:
        """:meth:`read_box` as an RGB PIL image (saves two copies when it is encoded next)."""
        ew, eh = (extent, extent) if not isinstance(extent, tuple) else extent
        ow, oh = (out_size, out_size) if isinstance(out_size, int) else out_size
        level = self.best_level(max(ew / ow, eh / oh))
        lds = self.level_downsamples[level]
        lw, lh = ew / lds, eh / lds
        if abs(lw / ow - 1.0) < RESIZE_TOLERANCE and abs(lh / oh - 1.0) < RESIZE_TOLERANCE:
            return self._read_pil(x, y, level, ow, oh)
        lw = max(1, int(math.ceil(lw - 1e-6)))
        lh = max(1, int(math.ceil(lh - 1e-6)))
        return self._read_pil(x, y, level, lw, lh).resize((ow, oh), Image.Resampling.BILINEAR)

    def thumbnail(self, downsample: float) -> np.ndarray:
        """The whole slide at ``downsample`` level-0 pixels per pixel (RGB uint8).

        Output size is ceil(level-0 size / downsample). Reads the nearest finer level block by
        block when it is large, so a single-level gigapixel slide does not need all its pixels
        in memory at once.
        """
        downsample = max(float(downsample), 1.0)
        out_w = max(1, int(math.ceil(self.width / downsample)))
        out_h = max(1, int(math.ceil(self.height / downsample)))
        level = self.best_level(downsample)
        lw, lh = self.level_dimensions[level]
        lds = self.level_downsamples[level]
        if lw * lh <= _MAX_PIXELS_ONE_READ:
            image = self._read_pil(0, 0, level, lw, lh)
            return np.asarray(image.resize((out_w, out_h), Image.Resampling.BOX))
        factor = max(1, int(downsample / lds))  # integer box reduction per block
        block = max(factor, (_BLOCK // factor) * factor)
        rows = []
        for by in range(0, lh, block):
            row = []
            for bx in range(0, lw, block):
                bw, bh = min(block, lw - bx), min(block, lh - by)
                tile = self._read_pil(int(bx * lds), int(by * lds), level, bw, bh)
                row.append(np.asarray(tile.reduce(factor)))
            rows.append(np.concatenate(row, axis=1))
        reduced = np.concatenate(rows, axis=0)
        return np.asarray(Image.fromarray(reduced).resize((out_w, out_h), Image.Resampling.BOX))


def open_slide(path: str | os.PathLike[str], *, mpp: float | None = None,
               slide_id: str | None = None) -> Slide:
    """Open a slide (a ``DataError`` naming the file if it cannot be read)."""
    return Slide(path, mpp=mpp, slide_id=slide_id)
