"""Tilers: turn a slide into tile records (coordinates, tissue, scores) and optional pixels.

Built-in tilers (registered as components of kind ``tiler``, see ``pmx components tiler``):
``grid`` (CLAM/CMTA), ``representative-region`` (ContraMAE), ``region`` (POMP, HC-MAE) and
``hsv-scored`` (impuTMAE). Run them on many slides with :func:`run_tiling` (processes, resumable
per slide) or on one open slide with ``tiler.tile(slide)``.

    from pmx.tiling import GridTiler, SlideRef, run_tiling
    summary = run_tiling(GridTiler(min_tissue=0.5), [SlideRef("s1", "s1.svs")], workers=2)
"""

from __future__ import annotations

from .base import SlideTiles, Tiler, TilerConfig, read_tile
from .boxes import TileBox, box_of, plan_box, read_box
from .encode import decode_pixels, encode_pixels
from .grid import GridConfig, GridTiler
from .hsv_scored import HsvScoredConfig, HsvScoredTiler, hsv_score
from .records import RECORD_SCHEMA, TileSpec, to_store_rows
from .region import RegionConfig, RegionTiler, subpatch_grid
from .representative import RepresentativeRegionConfig, RepresentativeRegionTiler
from .runner import SlideRef, TilingFailed, TilingSummary, run_tiling, tile_one
from .sinks import MemorySink, ParquetSink, StoreSink, TileSink
from .stored import load_tiles, tile_store_slides

__all__ = [
    "RECORD_SCHEMA",
    "GridConfig",
    "GridTiler",
    "HsvScoredConfig",
    "HsvScoredTiler",
    "MemorySink",
    "ParquetSink",
    "RegionConfig",
    "RegionTiler",
    "RepresentativeRegionConfig",
    "RepresentativeRegionTiler",
    "SlideRef",
    "SlideTiles",
    "StoreSink",
    "TileSink",
    "TileBox",
    "TileSpec",
    "Tiler",
    "TilerConfig",
    "TilingFailed",
    "TilingSummary",
    "box_of",
    "decode_pixels",
    "encode_pixels",
    "hsv_score",
    "load_tiles",
    "plan_box",
    "read_box",
    "read_tile",
    "run_tiling",
    "subpatch_grid",
    "tile_one",
    "tile_store_slides",
    "to_store_rows",
]
