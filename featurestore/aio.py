"""Lance reads batched into one round trip: an asyncio loop of our own on a daemon thread.

LanceDB's synchronous API hops to its event loop thread and back for every call: a range read
through it costs about six hops (schema lookups, the query, each batch), which is ~1-3 ms of
pure overhead per bag, a large part of reading a 10-20 MB bag. Here a bag's reads run as one
coroutine on LanceDB's async API (`lancedb.connect_async`), so a bag costs one hop.

The loop belongs to the process: a process started with ``spawn`` (DataLoader workers) starts
its own on first use, and so does a forked child (threads do not survive ``fork``; Lance itself
is not fork-safe, so forked readers are not supported anyway).
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from typing import Any, Awaitable, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None


def loop() -> asyncio.AbstractEventLoop:
    """This process's reader loop (started on first use)."""
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="pmx-store-io", daemon=True).start()
        return _loop


def run(awaitable: Awaitable[T]) -> T:
    """Run a coroutine on the reader loop and wait for its result."""
    return submit(awaitable).result()


def submit(awaitable: Awaitable[T]) -> "Future[T]":
    """Start a coroutine on the reader loop; its result comes later through the future."""
    return asyncio.run_coroutine_threadsafe(awaitable, loop())  # type: ignore[arg-type]


async def open_pinned(uri: str, physical: str, version: int,
                      storage_options: dict[str, str] | None) -> Any:
    """An async LanceDB table pinned to ``version`` (reads never see later commits)."""
    import lancedb

    db = await lancedb.connect_async(uri, storage_options=storage_options)
    table = await db.open_table(physical)
    await table.checkout(version)
    return table
