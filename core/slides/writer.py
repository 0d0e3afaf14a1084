"""Writing RGB images as pyramidal, Aperio-style TIFF slides that OpenSlide opens.

Used by tests, benchmarks and synthetic cohorts: a real pyramidal file exercises the same code
path (level choice, resize, vendor metadata) as a scanner's slide. The first page carries the
Aperio ImageDescription (``Aperio Image Library ...|AppMag = 20|MPP = 0.5``), which is how
OpenSlide recognises the vendor and reads mpp and objective power; tifffile's own JSON
description is switched off (``metadata=None``) so that one stays the only description.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import tifffile
from PIL import Image


def aperio_description(width: int, height: int, tile: int, mpp: float | None,
                       magnification: float | None, quality: int) -> str:
    fields = []
    if magnification is not None:
        fields.append(f"AppMag = {magnification:g}")
    if mpp is not None:
        fields.append(f"MPP = {mpp:.4f}")
    head = f"Aperio Image Library v12.0.0\r\n{width}x{height} ({tile}x{tile}) JPEG/RGB Q={quality}"
    return "|".join([head, *fields])


def write_pyramidal_tiff(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    mpp: float | None = 0.5,
    magnification: float | None = 20,
    downsamples: Sequence[int] = (1, 4, 16),
    tile: int = 256,
    compression: str = "jpeg",
    quality: int = 90,
) -> Path:
    """Write ``image`` (H, W, 3 uint8) as a tiled pyramid; levels smaller than a tile stop it.

    ``mpp`` / ``magnification`` None leave them out of the description (to test slides that
    lack a physical size). ``compression`` is ``"jpeg"``, ``"zlib"`` or ``"none"``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("image must be an (H, W, 3) uint8 array")
    height, width = image.shape[:2]
    codec = None if compression == "none" else compression
    codec_args = {"level": quality} if compression == "jpeg" else None
    base = Image.fromarray(image)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for index, ds in enumerate(downsamples):
            if ds == 1:
                level = image
            else:
                w, h = max(1, width // ds), max(1, height // ds)
                if index > 0 and (w < tile or h < tile) and w * h < tile * tile:
                    break
                level = np.asarray(base.resize((w, h), Image.Resampling.BOX))
            tif.write(
                level,
                tile=(tile, tile),
                photometric="rgb",
                compression=codec,
                compressionargs=codec_args,
                description=(aperio_description(width, height, tile, mpp, magnification, quality)
                             if index == 0 else None),
                metadata=None,
            )
    return path
