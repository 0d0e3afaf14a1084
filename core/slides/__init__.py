"""Whole-slide images: an OpenSlide reader with resolved pixel size, and tissue detection.

    from pmx.slides import open_slide, detect_tissue

    with open_slide("slide.svs") as slide:           # DataError naming the file if unreadable
        mask = detect_tissue(slide)                   # Otsu on HSV saturation of a thumbnail
        tile = slide.read(x, y, 256, target_mpp=0.5)  # nearest finer level + resize

Coordinates are always level-0 pixels; sizes are pixels at a target mpp (10 um / magnification).
"""

from __future__ import annotations

from .overrides import load_mpp_overrides
from .reader import SLIDE_EXTENSIONS, LevelInfo, Slide, SlideInfo, open_slide, resolve_mpp
from .tissue import TissueConfig, TissueMask, detect_tissue, otsu_threshold
from .units import MICRONS_AT_1X, magnification_to_mpp, mpp_to_magnification, target_mpp

__all__ = [
    "MICRONS_AT_1X",
    "SLIDE_EXTENSIONS",
    "LevelInfo",
    "Slide",
    "SlideInfo",
    "TissueConfig",
    "TissueMask",
    "detect_tissue",
    "load_mpp_overrides",
    "magnification_to_mpp",
    "mpp_to_magnification",
    "open_slide",
    "otsu_threshold",
    "resolve_mpp",
    "target_mpp",
]
