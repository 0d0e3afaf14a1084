"""What ingest records about a slide file: OpenSlide properties and a quick content fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pmx.errors import DataError

__all__ = ["inspect_slide", "quick_fingerprint"]

_CHUNK = 1 << 20


def quick_fingerprint(path: Path) -> str:
    """sha256 of the size, the first and the last MiB: cheap for multi-GB slides, and any re-scan
    or re-encoding of a slide changes it."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(_CHUNK))
        if size > _CHUNK:
            handle.seek(max(size - _CHUNK, _CHUNK))
            digest.update(handle.read(_CHUNK))
    return digest.hexdigest()[:16]


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def inspect_slide(path: Path, mpp_override: float | None = None) -> dict[str, Any]:
    """Vendor, level-0 mpp and size, objective power and fingerprint; DataError if unreadable."""
    import openslide

    try:
        with openslide.OpenSlide(str(path)) as slide:
            props = slide.properties
            width, height = slide.dimensions
            mpp = _float(props.get(openslide.PROPERTY_NAME_MPP_X))
            magnification = _float(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER))
            vendor = props.get(openslide.PROPERTY_NAME_VENDOR)
    except (openslide.OpenSlideError, openslide.OpenSlideUnsupportedFormatError, OSError) as exc:
        raise DataError(f"{path} cannot be opened by OpenSlide ({type(exc).__name__}: {exc}); "
                        "the file may be truncated or not a slide") from None
    return {
        "vendor": vendor,
        "mpp": mpp_override or mpp,
        "magnification": magnification,
        "width": int(width),
        "height": int(height),
        "fingerprint": quick_fingerprint(path),
    }
