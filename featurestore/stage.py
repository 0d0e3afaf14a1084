"""Content-addressed, resumable stages.

A stage (tile, embed, select, ...) is addressed by the hash of its name, its component's
fingerprint, its parameters and its inputs' keys. Its work is split into units (slides, folds);
each finished unit is recorded in the ``artifacts`` table right after its rows are committed.
Running the stage again therefore does only what is missing: nothing at all when every unit is
done (a cache hit, logged), the missing units after a crash or a kill, everything with
``force=True``.

Usage::

    with store.stage("embed", fingerprint=encoder.fingerprint, params=cfg,
                     inputs=[tiles_key], units=slide_ids, force=args.force) as stage:
        for slide_id in stage.pending():
            vectors = encode(slide_id)
            store.write_embeddings(encoder.fingerprint, slide_id, vectors, coords=...)
            stage.done(slide_id, rows=len(vectors))

For a local store, ``pending()`` holds a per-unit file lock while the caller works on a unit, so
several processes running the same stage share its units rather than repeating them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from pmx.components import fingerprint_of
from pmx.errors import DataError

from .store import sql_literal

if TYPE_CHECKING:
    from .store import FeatureStore

SUMMARY = "*"
DEFAULT_UNIT = "all"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def stage_key(name: str, fingerprint: str, params: Any = None, inputs: Sequence[str] = ()) -> str:
    """Content address of a stage output: same component, params and inputs = same key."""
    return fingerprint_of({"stage": name, "fingerprint": fingerprint, "params": params,
                           "inputs": list(inputs)})


class Stage:
    """One stage's cache entry; use as a context manager (see module docstring)."""

    def __init__(self, store: "FeatureStore", name: str, *, fingerprint: str, params: Any = None,
                 inputs: Sequence[str] = (), units: Iterable[Any] | None = None,
                 force: bool = False, logger: logging.Logger | None = None):
        self.store = store
        self.name = name
        self.fingerprint = fingerprint
        self.params = params
        self.inputs = [str(i) for i in inputs]
        self.key = stage_key(name, fingerprint, params, self.inputs)
        self.units: list[Any] = [DEFAULT_UNIT] if units is None else list(units)
        ids = [str(u) for u in self.units]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise DataError(f"stage {name}: duplicate unit(s) {', '.join(dupes[:5])}")
        if SUMMARY in ids:
            raise DataError(f"stage {name}: '{SUMMARY}' is reserved and cannot name a unit")
        self.force = force
        self.log = logger or logging.getLogger("pmx.store")
        self.cached = False
        self._done: dict[str, int] = {}
        self._started: dict[str, datetime] = {}
        self._holding: str | None = None  # unit whose lock pending() holds right now
        self._claims: dict[str, Any] = {}  # unit -> lock (None: lock-less store) taken by claim()
        # artifacts version up to which self._done is complete (see FeatureStore.caught_up)
        self._seen: int | None = None
        self._entered = False
        self._host = f"{socket.gethostname()}:{os.getpid()}"
        self._params_json = json.dumps(params, sort_keys=True, default=str)

    # -- context ----------------------------------------------------------------------------
    def __enter__(self) -> "Stage":
        self._entered = True
        if self.force:
            seen = self._head()
            self.store.delete("artifacts", f"key = {sql_literal(self.key)}")
            self._done, self._seen = {}, seen
        else:
            self._done = self._stored_done()
        if self.complete:
            self.cached = True
            self.log.info("stage %s [%s]: cache hit, all %d unit(s) done; skipping "
                          "(--force recomputes)", self.name, self.key, len(self.units))
            return self
        todo = len(self.units) - len(self._done)
        if self._done:
            self.log.info("stage %s [%s]: resuming, %d of %d unit(s) left", self.name, self.key,
                          todo, len(self.units))
        else:
            self.log.info("stage %s [%s]: %d unit(s) to compute", self.name, self.key, todo)
        self._write_summary("running")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        for unit in list(self._claims):  # units claimed but never finished (an error)
            self.release(unit)
        if self.cached:
            return
        self._done = self._stored_done()  # other processes may have finished units too
        if self.complete:
            self._write_summary("done")
            self.store.refresh_touched()
            self.log.info("stage %s [%s]: complete, %d unit(s), %d row(s)", self.name, self.key,
                          len(self.units), self.rows)
        else:
            self._write_summary("failed" if exc_type else "partial")
            self.log.info("stage %s [%s]: %d of %d unit(s) done; rerun to resume", self.name,
                          self.key, len(self._done), len(self.units))

    # -- units ------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return all(str(u) in self._done for u in self.units)

    @property
    def done_units(self) -> list[Any]:
        return [u for u in self.units if str(u) in self._done]

    @property
    def rows(self) -> int:
        return sum(self._done.get(str(u), 0) for u in self.units)

    def is_done(self, unit: Any) -> bool:
        return str(unit) in self._done

    def pending(self) -> Iterator[Any]:
        """Units not yet done, each yielded while this process holds the unit's lock."""
        if not self._entered:
            raise RuntimeError("use the stage as a context manager: with store.stage(...) as s:")
        if self.cached:
            return
        busy = []
        for unit in self.units:
            if str(unit) in self._done:
                continue
            lock = self.store.locks.lock("unit", self.key, str(unit))
            if lock is not None and not lock.acquire(blocking=False):
                busy.append(unit)  # another process is on it; come back at the end
                continue
            try:
                if not self._recheck(unit):
                    self._holding = str(unit) if lock is not None else None
                    yield unit
            finally:
                self._holding = None
                if lock is not None:
                    lock.release()
        for unit in busy:
            lock = self.store.locks.lock("unit", self.key, str(unit))
            assert lock is not None
            lock.acquire(blocking=True)
            try:
                if not self._recheck(unit):
                    self._holding = str(unit)
                    yield unit
            finally:
                self._holding = None
                lock.release()

    def claim(self, unit: Any, *, wait: bool = False) -> str:
        """Take ``unit`` for this process, for callers that keep several units in flight
        (``pending()`` holds one at a time). Returns ``"claimed"`` (compute it, then call
        `done`, which gives it back; call `release` if it fails), ``"done"`` (finished by
        another process meanwhile: skip it) or ``"busy"`` (another process is computing it).

        A busy unit may be claimed again with ``wait=True``, which blocks until the other
        process lets go. Only wait while holding no other claim: two processes each waiting
        for a unit the other holds would wait forever.
        """
        if not self._entered:
            raise RuntimeError("use the stage as a context manager: with store.stage(...) as s:")
        uid = str(unit)
        if uid in self._claims:
            return "claimed"
        if uid in self._done or self.cached:
            return "done"
        lock = self.store.locks.lock("unit", self.key, uid)
        if lock is not None and not lock.acquire(blocking=wait):
            return "busy"
        if self._recheck(unit):
            if lock is not None:
                lock.release()
            return "done"
        self._claims[uid] = lock
        return "claimed"

    def release(self, unit: Any) -> None:
        """Give back a unit taken with `claim` (without recording it as done)."""
        lock = self._claims.pop(str(unit), None)
        if lock is not None:
            lock.release()

    def _recheck(self, unit: Any) -> bool:
        """True if the unit was finished meanwhile (by another process); records start time.

        When no other process has written to ``artifacts`` since this stage last read its
        records, the answer is known without a query (the common case: one writer).
        """
        uid = str(unit)
        seen = self.store.caught_up("artifacts", self._seen)
        if seen is not None:
            self._seen = seen
        else:
            self._done.update(self._stored_done())
        if uid in self._done:
            self.log.debug("stage %s: unit %s finished by another process", self.name, uid)
            return True
        self._started[uid] = _now()
        return False

    def done(self, unit: Any, rows: int = 0) -> None:
        """Record that ``unit``'s rows are committed (call after writing them)."""
        self.done_many({unit: rows})

    def done_many(self, rows_by_unit: Mapping[Any, int]) -> None:
        """Record several committed units with one write to the artifacts table (a commit per
        unit costs ~10 ms, as much as writing a few thousand vectors)."""
        uids = {str(unit): int(rows) for unit, rows in rows_by_unit.items()}
        known = {str(u) for u in self.units}
        strangers = [uid for uid in uids if uid not in known]
        if strangers:
            raise DataError(f"stage {self.name}: {strangers[0]!r} is not one of its units")
        if not uids:
            return
        now = _now()
        records = [self._row(uid, "done", rows=rows, started=self._started.get(uid, now),
                             finished=now) for uid, rows in uids.items()]
        if all(uid == self._holding or self._claims.get(uid) is not None for uid in uids):
            # we hold every unit's lock and saw no record of it: the keys are new, append
            self.store.append("artifacts", records)
        else:
            self.store.upsert("artifacts", records)
        for uid, rows in uids.items():
            self._done[uid] = rows
            self.release(uid)  # a claimed unit is given back once its record is committed

    # -- artifacts rows ---------------------------------------------------------------------
    def _head(self) -> int:
        """Current artifacts version (0: no table yet)."""
        head = self.store.head("artifacts")
        return 0 if head is None else head

    def _stored_done(self) -> dict[str, int]:
        """Done units from the table; the version read first is recorded as ``_seen``."""
        self._seen = self._head()
        table = self.store.read_arrow("artifacts", where=(
            f"key = {sql_literal(self.key)} AND unit != '{SUMMARY}' AND status = 'done'"),
            columns=["unit", "rows"])
        wanted = {str(u) for u in self.units}
        return {u: int(r or 0) for u, r in zip(table.column("unit").to_pylist(),
                                                table.column("rows").to_pylist()) if u in wanted}

    def _row(self, unit: str, status: str, rows: int | None = None, started: datetime | None = None,
             finished: datetime | None = None, units: int | None = None) -> dict[str, Any]:
        return {"key": self.key, "unit": unit, "stage": self.name, "fingerprint": self.fingerprint,
                "params": self._params_json, "inputs": self.inputs, "status": status, "rows": rows,
                "units": units, "started_at": started, "finished_at": finished, "host": self._host}

    def _write_summary(self, status: str) -> None:
        now = _now()
        started = self._summary_started() or now
        self.store.upsert("artifacts", [self._row(
            SUMMARY, status, rows=self.rows, units=len(self.units), started=started,
            finished=now if status == "done" else None)])

    def _summary_started(self) -> datetime | None:
        table = self.store.read_arrow("artifacts", where=(
            f"key = {sql_literal(self.key)} AND unit = '{SUMMARY}'"), columns=["started_at"])
        return table.column("started_at")[0].as_py() if table.num_rows else None
