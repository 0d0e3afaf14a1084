"""Tiling many slides: one process per slide at a time, results committed slide by slide.

OpenSlide handles and Lance connections are not fork-safe, so workers start with ``spawn``
(or ``forkserver``) and open their slide themselves; only the parent writes to the sink, one
slide at a time, so a killed run leaves every finished slide committed and marked done. A slide
that fails (unreadable file, no pixel size, ...) does not stop the others: the run finishes,
then raises one ``DataError`` listing the failed slides and the reasons.

Slides are claimed from the sink lazily, one when a worker is free (claim, tile, commit, claim
the next), never all up front: a second process tiling the same slides into the same store
skips the ones the first holds or has finished, so the two split the work. Slides that were
busy in another process are waited for at the end (holding nothing), and tiled here only if
that process let go without finishing them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..errors import DataError, PmxError, SlidesFailed
from ..slides.reader import open_slide
from .base import SlideTiles, Tiler
from .sinks import BUSY, CLAIMED, MemorySink, TileSink

log = logging.getLogger("pmx.tiling")


@dataclass(frozen=True)
class SlideRef:
    """A slide to tile: id, file, patient, and an optional mpp override."""

    slide_id: str
    path: str
    patient_id: str | None = None
    mpp: float | None = None


@dataclass
class TilingSummary:
    tiler: str
    fingerprint: str
    slides: int
    computed: int = 0
    skipped: int = 0
    tiles: int = 0
    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tiler": self.tiler, "fingerprint": self.fingerprint, "slides": self.slides,
            "computed": self.computed, "skipped": self.skipped, "tiles": self.tiles,
            "seconds": round(self.seconds, 3), "failed": self.failed, "notes": self.notes,
        }


def tile_one(tiler_cls: type[Tiler], config: Any, ref: SlideRef, threads: int = 1) -> SlideTiles:
    """Tile one slide (the worker entry point; the slide is opened in this process)."""
    tiler = tiler_cls(config)
    with open_slide(ref.path, mpp=ref.mpp, slide_id=ref.slide_id) as slide:
        return tiler.tile(slide, patient_id=ref.patient_id, threads=threads)


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, PmxError):
        return str(exc)
    if isinstance(exc, BrokenProcessPool):
        return ("the worker process died (out of memory, a crash in the slide library" +
                _script_hint() + ")")
    return f"{type(exc).__name__}: {exc}"


def _script_hint() -> str:
    """Worker processes start by importing the caller's script (as ``__mp_main__``): a script
    that calls pmx at top level, without a ``__main__`` guard, starts tiling again in every
    worker, which Python refuses, so each worker dies at start. Name that when it can be it."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or getattr(main, "__spec__", None) is not None:  # interactive, or `python -m`
        return ""
    return (f", or {path} calls pmx at top level: workers re-import the script, so put the "
            "call under `if __name__ == \"__main__\":`")


def run_tiling(
    tiler: Tiler,
    slides: Sequence[SlideRef],
    sink: TileSink | None = None,
    *,
    workers: int = 1,
    threads: int = 0,
    force: bool = False,
    progress: bool = True,
    start_method: str | None = None,
    on_result: Callable[[SlideTiles], None] | None = None,
) -> TilingSummary:
    """Tile ``slides`` into ``sink`` (a :class:`MemorySink` when None); resumes unless ``force``.

    ``workers`` > 1 tiles that many slides at a time in separate processes (0 = one per CPU);
    each reads its slide's tiles on ``threads`` threads (0 = CPUs / workers). ``start_method``
    is ``forkserver`` (default where available) or ``spawn``; never ``fork``.
    """
    sink = sink if sink is not None else MemorySink()
    ids = [ref.slide_id for ref in slides]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise DataError(f"slide id(s) listed more than once: {', '.join(duplicates[:5])}")
    summary = TilingSummary(tiler.name, tiler.fingerprint, len(slides))
    start = time.perf_counter()
    error: BaseException | None = None
    warned = _NoteLog()
    pending_ids = sink.begin(tiler, ids, force=force)
    try:
        pending = set(pending_ids)
        todo = [ref for ref in slides if ref.slide_id in pending]
        summary.skipped = len(slides) - len(todo)
        if summary.skipped:
            log.info("tiler %s: %d of %d slide(s) already tiled; %d to do", tiler.name,
                     summary.skipped, len(slides), len(todo))
        bar = tqdm(total=len(todo), unit="slide", desc=f"tile {tiler.name}",
                   disable=not progress or not todo, leave=False)
        redirect = logging_redirect_tqdm() if not bar.disable else contextlib.nullcontext()

        def skipped(ref: SlideRef) -> None:  # finished meanwhile by another process
            summary.skipped += 1
            log.info("slide %s was tiled meanwhile by another run; skipped", ref.slide_id)
            bar.update(1)

        def consume(refs: Iterable[SlideRef], pool_size: int) -> None:
            for ref, outcome in _results(tiler, refs, pool_size, threads, start_method,
                                         len(todo)):
                if isinstance(outcome, BaseException):
                    sink.release(ref.slide_id)
                    summary.failed[ref.slide_id] = _describe_failure(outcome)
                    log.warning("slide %s failed: %s", ref.slide_id, summary.failed[ref.slide_id])
                else:
                    sink.write(outcome)
                    summary.computed += 1
                    summary.tiles += outcome.n_tiles
                    for note in outcome.notes:
                        warned.report(note, ref.slide_id)
                    summary.notes.extend(outcome.notes)
                    if on_result is not None:
                        on_result(outcome)
                bar.update(1)
                bar.set_postfix(tiles=summary.tiles, failed=len(summary.failed), refresh=False)

        with bar, redirect:
            busy: list[SlideRef] = []
            consume(_claimed(sink, todo, busy, skipped), workers)
            for ref in busy:  # another run had it: wait for it (holding nothing), then look
                if sink.claim(ref.slide_id, wait=True) == CLAIMED:
                    log.info("slide %s: the run that had it stopped without finishing it; "
                             "tiling it here", ref.slide_id)
                    consume([ref], 1)
                else:
                    skipped(ref)
    except BaseException as exc:
        error = exc
        raise
    finally:
        sink.end(error)
        warned.flush()
        summary.seconds = time.perf_counter() - start
    if summary.failed:
        raise TilingFailed.of(summary.failed, len(slides), summary)
    return summary


class _NoteLog:
    """Logs each kind of per-slide warning once, then how many more slides had it."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def report(self, note: str, slide_id: str) -> None:
        key = re.sub(r"\d+(\.\d+)?", "#", note.replace(slide_id, "{slide}"))
        if key not in self.counts:
            self.first[key] = slide_id
            self.counts[key] = 0
            log.warning("%s", note)
        else:
            self.counts[key] += 1

    def flush(self) -> None:
        for key, extra in self.counts.items():
            if extra:
                log.warning("%d more slide(s) had the same warning as slide %s", extra,
                            self.first[key])


class TilingFailed(SlidesFailed):
    """Some slides failed; ``summary`` (a :class:`TilingSummary`) says which and what the others
    produced."""

    verb = "tiled"


def _context(start_method: str | None,
             preload: Sequence[str] = ()) -> multiprocessing.context.BaseContext:
    """``forkserver`` with this module (the tiler base, OpenSlide, numpy, pyarrow) and the
    ``preload`` modules imported where available (workers then start by forking an interpreter
    that never opened a slide or a store), else ``spawn``. The ``pmx.tiling`` package itself
    imports nothing (its names are lazy), so the modules are named here."""
    methods = multiprocessing.get_all_start_methods()
    method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
    if method == "fork":
        raise ValueError("the 'fork' start method is unsafe with OpenSlide and Lance handles; "
                         "use 'forkserver' or 'spawn'")
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([__name__, *preload])
    return context


def _claimed(sink: TileSink, todo: Sequence[SlideRef], busy: list[SlideRef],
             skipped: Callable[[SlideRef], None]) -> Iterator[SlideRef]:
    """The slides of ``todo`` this process gets, claimed one at a time as they are asked for;
    slides another process holds go to ``busy``, finished ones to ``skipped``."""
    for ref in todo:
        state = sink.claim(ref.slide_id)
        if state == CLAIMED:
            yield ref
        elif state == BUSY:
            busy.append(ref)
        else:
            skipped(ref)


def _results(tiler: Tiler, refs: Iterable[SlideRef], workers: int, threads: int,
             start_method: str | None, count: int
             ) -> Iterator[tuple[SlideRef, SlideTiles | BaseException]]:
    """Tile ``refs`` (at most ``count`` of them), pulling the next one only when a worker is
    free, so a slide is claimed right before it is tiled."""
    cpus = os.cpu_count() or 1
    if workers <= 0:
        workers = cpus
    workers = max(1, min(workers, count))
    if threads <= 0:
        threads = max(1, cpus // workers)
    cls, config = type(tiler), tiler.config
    if workers == 1:
        for ref in refs:
            try:
                yield ref, tile_one(cls, config, ref, threads)
            except Exception as exc:  # noqa: BLE001 - reported per slide
                yield ref, exc
        return
    queue = iter(refs)
    context = _context(start_method, [cls.__module__])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running: dict[Future[SlideTiles], SlideRef] = {}
        try:
            while True:
                while len(running) < workers:
                    ref = next(queue, None)
                    if ref is None:
                        break
                    try:
                        running[pool.submit(tile_one, cls, config, ref, threads)] = ref
                    except (BrokenProcessPool, RuntimeError) as exc:  # pool died earlier
                        yield ref, exc
                if not running:
                    return
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    ref = running.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:  # noqa: BLE001 - reported per slide
                        yield ref, exc
                    else:
                        yield ref, result
        finally:
            for future in running:
                future.cancel()
