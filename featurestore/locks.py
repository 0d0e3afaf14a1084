"""Advisory file locks that serialise writers of a local store across processes.

Lance commits are atomic, but two processes merging the same new keys at the same moment can
each see "not present" and both insert. For a local store every write to a table holds that
table's lock, and a stage unit holds the unit's lock while it is being computed, so two
processes running the same stage split the units instead of both doing (and duplicating) them.

``flock`` locks belong to the open file: the kernel drops them when the process dies, even by
SIGKILL, so a killed writer never leaves a stale lock behind. Object-store URIs have no such
primitive; there the store relies on keyed merges alone (see docs/store.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class FileLock:
    """An exclusive ``flock`` on ``path`` (created on first use)."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return True
            except BlockingIOError:
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    os.close(fd)
                    return False
                time.sleep(0.02)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LockDir:
    """Named locks under ``<store>/_locks``; a no-op for stores without a local directory."""

    def __init__(self, root: Path | None):
        self.root = root

    def lock(self, *parts: str) -> FileLock | None:
        if self.root is None:
            return None
        name = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
        return FileLock(self.root / f"{name}.lock")

    @contextmanager
    def hold(self, *parts: str) -> Iterator[None]:
        lock = self.lock(*parts)
        if lock is None:
            yield
            return
        with lock:
            yield
