"""Tile records: what a tiler says about each tile, as rows of one arrow table per slide.

A record locates a tile on the slide without its pixels: level-0 top-left ``(x, y)`` and its
edge ``extent`` in level-0 pixels; the exact read behind its pixels, ``size`` x ``size`` pixels
at pyramid ``level`` resized to ``out_size`` when the two differ (:mod:`pmx.tiling.boxes`;
``pmx.tiling.read_tile`` repeats it); and ``mpp``, the pixel size of those ``out_size`` pixels
(for a POMP region: 4096 px at 20x kept at ``out_size`` 256, i.e. ``mpp`` 8.0). Pixels are
optional encoded bytes.

``kind`` is ``tile``, ``region`` or ``subpatch``; sub-patches of a region carry the region's
``tile_index`` in ``parent_index`` and their row-major position in ``sub_index``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

#: Arrow schema of tile records (the store's ``tiles`` table holds the subset it knows).
RECORD_SCHEMA = pa.schema([
    pa.field("slide_id", pa.string(), nullable=False),
    pa.field("patient_id", pa.string()),
    pa.field("tiler", pa.string(), nullable=False),
    pa.field("tiler_name", pa.string()),
    pa.field("tile_index", pa.int32(), nullable=False),
    pa.field("kind", pa.string()),
    pa.field("parent_index", pa.int32()),
    pa.field("sub_index", pa.int32()),
    pa.field("level", pa.int32(), nullable=False),
    pa.field("x", pa.int64(), nullable=False),
    pa.field("y", pa.int64(), nullable=False),
    pa.field("size", pa.int32()),
    pa.field("extent", pa.float64()),
    pa.field("mpp", pa.float64()),
    pa.field("magnification", pa.float64()),
    pa.field("out_size", pa.int32()),
    pa.field("tissue", pa.float32()),
    pa.field("score", pa.float32()),
    pa.field("padded", pa.bool_()),
    pa.field("pixels", pa.binary()),
    pa.field("pixel_format", pa.string()),
])


@dataclass
class TileSpec:
    """One planned tile, before pixels are read: level-0 box and the tiler's scores."""

    x: int
    y: int
    extent: float
    out_size: int
    tissue: float = 0.0
    score: float = 0.0
    padded: bool = False
    kind: str = "tile"
    parent_index: int = -1
    sub_index: int = -1
    #: pixels already read while planning (e.g. hsv-scored candidates), at the output size
    image: np.ndarray | None = field(default=None, repr=False)


def empty_records() -> pa.Table:
    return RECORD_SCHEMA.empty_table()


def records_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    rows = list(rows)
    if not rows:
        return empty_records()
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def to_store_rows(records: pa.Table, store_schema: pa.Schema) -> pa.Table:
    """The columns of ``records`` that the store's tiles table has (others are dropped).

    Sub-patch rows are keyed by the tiler fingerprint plus ``.sub`` so that they never collide
    with their region, which starts at the same (level, x, y).
    """
    if records.num_rows and "kind" in records.column_names:
        kinds = records.column("kind").to_pylist()
        if "subpatch" in kinds:
            tilers = [t + ".sub" if k == "subpatch" else t
                      for t, k in zip(records.column("tiler").to_pylist(), kinds)]
            records = records.set_column(records.schema.get_field_index("tiler"), "tiler",
                                         pa.array(tilers, pa.string()))
    keep = [name for name in records.column_names if name in store_schema.names]
    return records.select(keep)
