"""Registers pmx's built-in tilers through the same hook external plugins use."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .grid import GridTiler
from .hsv_scored import HsvScoredTiler
from .region import RegionTiler
from .representative import RepresentativeRegionTiler

BUILTIN_TILERS = (GridTiler, RepresentativeRegionTiler, RegionTiler, HsvScoredTiler)


@hookimpl
def pmx_register_tilers(register):  # type: ignore[no-untyped-def]
    for cls in BUILTIN_TILERS:
        register(cls)
