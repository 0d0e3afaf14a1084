"""Registers pmx's built-in tilers through the same hook external plugins use.

By import path, so that loading plugins (``pmx --help``, ``pmx plugins``) imports no tiler code;
the registry imports a tiler the first time it is looked up.
"""

from __future__ import annotations

from ..hookspecs import hookimpl

#: tiler name -> import path of its class
BUILTIN_TILERS: dict[str, str] = {
    "grid": "pmx.tiling.grid:GridTiler",
    "representative-region": "pmx.tiling.representative:RepresentativeRegionTiler",
    "region": "pmx.tiling.region:RegionTiler",
    "hsv-scored": "pmx.tiling.hsv_scored:HsvScoredTiler",
}


@hookimpl
def pmx_register_tilers(register):  # type: ignore[no-untyped-def]
    for name, target in BUILTIN_TILERS.items():
        register(target, name=name)
