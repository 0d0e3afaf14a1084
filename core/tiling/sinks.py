"""Where tile records go, and how a rerun knows which slides are already done.

A sink is told which slides a run covers (``begin`` returns those still to do), receives one
slide's records at a time (``write``, which commits them and marks the slide done), and is
closed with ``end``. Because completion is recorded per slide right after that slide's rows are
committed, a killed run resumes with exactly the missing slides.

- :class:`StoreSink`: the feature store's ``tiles`` table and its ``tile`` stage (the default).
- :class:`ParquetSink`: one Parquet file per slide under a folder (no store needed).
- :class:`MemorySink`: keeps results in memory (library use and tests).
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .records import RECORD_SCHEMA, empty_records, to_store_rows

if TYPE_CHECKING:
    from .base import SlideTiles, Tiler

log = logging.getLogger("pmx.tiling")

#: name of the stage in the store's artifacts table
STAGE_NAME = "tile"


class TileSink:
    """Base sink: override ``begin``/``write``/``end``."""

    def begin(self, tiler: "Tiler", slide_ids: Sequence[str], force: bool = False) -> list[str]:
        raise NotImplementedError

    def write(self, result: "SlideTiles") -> None:
        raise NotImplementedError

    def end(self, error: BaseException | None = None) -> None:
        """Called once after the run (``error`` set when it was interrupted)."""


class MemorySink(TileSink):
    def __init__(self) -> None:
        self.results: dict[str, "SlideTiles"] = {}

    def begin(self, tiler: "Tiler", slide_ids: Sequence[str], force: bool = False) -> list[str]:
        if force:
            self.results.clear()
        return [s for s in slide_ids if s not in self.results]

    def write(self, result: "SlideTiles") -> None:
        self.results[result.slide_id] = result

    def table(self) -> pa.Table:
        tables = [r.records for r in self.results.values()]
        return pa.concat_tables(tables) if tables else empty_records()


def _safe_name(slide_id: str) -> str:
    return urllib.parse.quote(slide_id, safe="") or "_"


class ParquetSink(TileSink):
    """``ROOT/<tiler name>-<fingerprint>/<slide_id>.parquet``; a file exists = slide done."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.folder: Path | None = None

    def begin(self, tiler: "Tiler", slide_ids: Sequence[str], force: bool = False) -> list[str]:
        self.folder = self.root / f"{tiler.name}-{tiler.fingerprint}"
        self.folder.mkdir(parents=True, exist_ok=True)
        if force:
            return list(slide_ids)
        return [s for s in slide_ids if not self.path_for(s).exists()]

    def path_for(self, slide_id: str) -> Path:
        assert self.folder is not None, "call begin() first"
        return self.folder / f"{_safe_name(slide_id)}.parquet"

    def write(self, result: "SlideTiles") -> None:
        target = self.path_for(result.slide_id)
        partial = target.with_suffix(f".parquet.tmp{os.getpid()}")
        pq.write_table(result.records, partial)
        os.replace(partial, target)  # atomic: a killed run never leaves a half file as "done"

    def read(self) -> pa.Table:
        assert self.folder is not None, "call begin() first"
        files = sorted(self.folder.glob("*.parquet"))
        tables = [pq.read_table(f, schema=RECORD_SCHEMA) for f in files]
        return pa.concat_tables(tables) if tables else empty_records()


class StoreSink(TileSink):
    """The feature store: rows in ``tiles`` (replaced per slide), completion in ``artifacts``."""

    def __init__(self, store: Any, params: dict[str, Any] | None = None,
                 inputs: Sequence[str] = ()) -> None:
        self.store = store
        self.extra_params = params or {}
        self.inputs = list(inputs)
        self._stage: Any = None
        self._tiler: "Tiler | None" = None

    def begin(self, tiler: "Tiler", slide_ids: Sequence[str], force: bool = False) -> list[str]:
        self._tiler = tiler
        params = {"tiler": tiler.name, "version": tiler.version,
                  "config": tiler.config.model_dump(mode="json"), **self.extra_params}
        self._stage = self.store.stage(STAGE_NAME, fingerprint=tiler.fingerprint, params=params,
                                       inputs=self.inputs, units=list(slide_ids), force=force,
                                       logger=log)
        self._stage.__enter__()
        if self._stage.cached:
            return []
        # units done before this run started (one artifacts query, not one per slide); a slide
        # finished meanwhile by a concurrent run is redone, which replaces the same rows
        return [str(u) for u in slide_ids if not self._stage.is_done(u)]

    @property
    def stage_key(self) -> str | None:
        return self._stage.key if self._stage is not None else None

    def write(self, result: "SlideTiles") -> None:
        from pmx.featurestore import schemas, sql_literal

        assert self._tiler is not None and self._stage is not None, "call begin() first"
        fingerprint = self._tiler.fingerprint
        rows = to_store_rows(result.records, schemas.TILES.schema)
        where = (f"slide_id = {sql_literal(result.slide_id)} AND "
                 f"(tiler = {sql_literal(fingerprint)} OR tiler = {sql_literal(fingerprint + '.sub')})")
        self.store.replace("tiles", rows, where=where)
        self._stage.done(result.slide_id, rows=result.n_tiles)

    def end(self, error: BaseException | None = None) -> None:
        if self._stage is not None:
            self._stage.__exit__(type(error) if error else None, error, None)
            self._stage = None
