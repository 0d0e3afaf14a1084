"""Tilers: turn a slide into tile records (coordinates, tissue, scores) and optional pixels.

Built-in tilers (registered as components of kind ``tiler``, see ``pmx components tiler``):
``grid`` (CLAM/CMTA), ``representative-region`` (ContraMAE), ``region`` (POMP, HC-MAE) and
``hsv-scored`` (impuTMAE). Run them on many slides with :func:`run_tiling` (processes, resumable
per slide) or on one open slide with ``tiler.tile(slide)``.

    from pmx.tiling import GridTiler, SlideRef, run_tiling
    summary = run_tiling(GridTiler(min_tissue=0.5), [SlideRef("s1", "s1.svs")], workers=2)

Names are imported lazily: every ``pmx`` command loads ``pmx.tiling.builtin`` (the plugin module
registering the tilers), and importing the tilers themselves would pull in numpy, pyarrow,
OpenSlide and scipy before any work starts.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "SlideTiles": "base",
    "Tiler": "base",
    "TilerConfig": "base",
    "read_tile": "base",
    "TileBox": "boxes",
    "box_of": "boxes",
    "plan_box": "boxes",
    "read_box": "boxes",
    "decode_pixels": "encode",
    "encode_pixels": "encode",
    "GridConfig": "grid",
    "GridTiler": "grid",
    "HsvScoredConfig": "hsv_scored",
    "HsvScoredTiler": "hsv_scored",
    "hsv_score": "hsv_scored",
    "RECORD_SCHEMA": "records",
    "TileSpec": "records",
    "to_store_rows": "records",
    "RegionConfig": "region",
    "RegionTiler": "region",
    "subpatch_grid": "region",
    "RepresentativeRegionConfig": "representative",
    "RepresentativeRegionTiler": "representative",
    "SlideRef": "runner",
    "TilingFailed": "runner",
    "TilingSummary": "runner",
    "run_tiling": "runner",
    "tile_one": "runner",
    "MemorySink": "sinks",
    "ParquetSink": "sinks",
    "StoreSink": "sinks",
    "TileSink": "sinks",
    "load_tiles": "stored",
    "tile_store_slides": "stored",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
