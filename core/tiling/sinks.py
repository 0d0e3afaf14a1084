"""Where tile records go, and how a rerun knows which slides are already done.

A sink is told which slides a run covers (``begin`` returns those still to do), is asked for
each slide right before it is tiled (``claim``: take it, or skip it because another process has
it or finished it), receives one slide's records at a time (``write``, which commits them, marks
the slide done and gives the claim back), and is closed with ``end``. Because completion is
recorded per slide right after that slide's rows are committed, a killed run resumes with
exactly the missing slides; because slides are claimed one at a time as the run reaches them,
two processes tiling the same slides into one store split them instead of both doing all.

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

#: answers of :meth:`TileSink.claim`
CLAIMED, DONE, BUSY = "claimed", "done", "busy"


class TileSink:
    """Base sink: override ``begin``/``write``/``end``."""

    def begin(self, tiler: "Tiler", slide_ids: Sequence[str], force: bool = False) -> list[str]:
        raise NotImplementedError

    def claim(self, slide_id: str, wait: bool = False) -> str:
        """Take a slide right before tiling it: ``CLAIMED`` (tile it now), ``DONE`` (finished
        meanwhile by another process: skip it) or ``BUSY`` (another process is tiling it; ask
        again with ``wait=True``, holding no other claim, to wait for it). Sinks without
        concurrent writers always answer ``CLAIMED``."""
        return CLAIMED

    def release(self, slide_id: str) -> None:
        """Give back a claimed slide that was not written (its tiling failed)."""

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
    """The feature store: rows in ``tiles`` (replaced per slide), completion in ``artifacts``.

    Slides are claimed through the stage's per-unit locks (local stores), so concurrent runs
    of the same tiler on the same store tile each slide once.
    """

    def __init__(self, store: Any, params: dict[str, Any] | None = None,
                 inputs: Sequence[str] = ()) -> None:
        self.store = store
        self.extra_params = params or {}
        self.inputs = list(inputs)
        self._stage: Any = None
        self._tiler: "Tiler | None" = None

    def begin(self, tiler: "Tiler", slide_ids: Sequence[str], force: bool = False) -> list[str]:
        self._check_tiles_table(force)
        self._tiler = tiler
        params = {"tiler": tiler.name, "version": tiler.version,
                  "config": tiler.config.model_dump(mode="json"), **self.extra_params}
        self._stage = self.store.stage(STAGE_NAME, fingerprint=tiler.fingerprint, params=params,
                                       inputs=self.inputs, units=list(slide_ids), force=force,
                                       logger=log)
        self._stage.__enter__()
        if self._stage.cached:
            return []
        # units done before this run started (one artifacts query, not one per slide); one
        # finished meanwhile by a concurrent run is skipped when the run claims it
        return [str(u) for u in slide_ids if not self._stage.is_done(u)]

    def _check_tiles_table(self, force: bool) -> None:
        """Refuse an old-layout tiles table before any work (the store's error says the fix);
        with ``force``, drop it and every tiler's tile-stage records instead."""
        from pmx.featurestore import schemas

        if not self.store.has_table("tiles"):
            return
        if not force:
            self.store.table("tiles")  # opening checks the layout
            return
        stored = self.store.db.open_table("tiles").schema
        missing = schemas.missing_columns("tiles", stored)
        if missing:
            log.warning("store %s: dropping its old-layout tiles table (no %s) and the tile stage "
                        "records of every tiler (--force); re-tile other tilers you use",
                        self.store.uri, ", ".join(missing))
            if self.store.has_table("artifacts"):
                self.store.delete("artifacts", f"stage = '{STAGE_NAME}'")
            self.store.drop_table("tiles")

    @property
    def stage_key(self) -> str | None:
        return self._stage.key if self._stage is not None else None

    def claim(self, slide_id: str, wait: bool = False) -> str:
        assert self._stage is not None, "call begin() first"
        return self._stage.claim(slide_id, wait=wait)

    def release(self, slide_id: str) -> None:
        if self._stage is not None:
            self._stage.release(slide_id)

    def write(self, result: "SlideTiles") -> None:
        from pmx.featurestore import schemas, sql_literal

        assert self._tiler is not None and self._stage is not None, "call begin() first"
        fingerprint = self._tiler.fingerprint
        rows = to_store_rows(result.records, schemas.TILES.schema)
        where = (f"slide_id = {sql_literal(result.slide_id)} AND "
                 f"(tiler = {sql_literal(fingerprint)} OR tiler = {sql_literal(fingerprint + '.sub')})")
        self.store.replace("tiles", rows, where=where)
        self._stage.done(result.slide_id, rows=result.n_tiles)  # also gives the claim back

    def end(self, error: BaseException | None = None) -> None:
        if self._stage is not None:
            self._stage.__exit__(type(error) if error else None, error, None)
            self._stage = None
