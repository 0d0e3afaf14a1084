"""Tile pixels as bytes: JPEG (small, lossy) or PNG (lossless), only when a method asks."""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image

from ..errors import DataError

PixelFormat = Literal["none", "jpeg", "png"]


def encode_pixels(image: np.ndarray | Image.Image, fmt: str, quality: int = 90) -> bytes:
    """RGB uint8 (H, W, 3) array or PIL image -> encoded bytes."""
    buffer = io.BytesIO()
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image))
    if fmt == "jpeg":
        pil.save(buffer, format="JPEG", quality=int(quality))
    elif fmt == "png":
        pil.save(buffer, format="PNG", compress_level=3)
    else:
        raise ValueError(f"unknown pixel format {fmt!r}; use jpeg or png")
    return buffer.getvalue()


def decode_pixels(data: bytes) -> np.ndarray:
    """Encoded JPEG/PNG bytes -> RGB uint8 (H, W, 3)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - any decoder failure means bad stored bytes
        raise DataError(f"stored tile pixels cannot be decoded ({len(data)} bytes): {exc}") from None
