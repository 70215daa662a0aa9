"""How an idle SQLite reader learns, at once and for free, that another connection committed.

Every commit in WAL mode writes the ``<db>-wal`` file, so the kernel tells us (inotify on
the directory: see :mod:`.inotify`) the moment some process writes it; ``PRAGMA
data_version`` — shared memory, no disk — then says whether a commit by another
connection is visible yet. The two are needed together: inotify fires on the write of
the commit's frames, a moment *before* the commit is published (after its fsync), so
after a write we look on every turn of the event loop for a millisecond (a local
disk's fsync usually ends by then: pickup need not wait for the next whole millisecond
of the loop's timers), then every millisecond until a commit shows, then — inotify merges
events, so another commit may hide behind the one we saw — at growing intervals (1 ms,
2 ms, 4 ms, ... half a second). A quiet database costs nothing at all.

Without inotify (macOS, Windows, or the per-user instance limit reached) the waker falls
back to reading ``data_version`` every ``fallback_interval`` seconds (50 ms by default),
so cross-process pickup takes up to that long there. :meth:`SQLiteWaker.poke` (local
enqueuers) wakes it at once on every platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from pathlib import Path

from .connector import Waker
from .inotify import DirectoryWatch

log = logging.getLogger(__name__)

# after a write to the WAL: look every EAGER_NAP seconds until a commit shows (for at most
# EAGER seconds: a slow disk's fsync, or a write that was rolled back), then at growing
# intervals until SETTLE seconds after the write
EAGER, EAGER_NAP = 0.2, 0.001  # (epoll waits whole milliseconds anyway)
SPIN = 0.001  # ... and for the first SPIN seconds on every turn of the loop
SETTLE = 0.5


class SQLiteWaker(Waker):
    """Wakes when another connection commits to the database at ``path``, or when poked."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, fallback_interval: float = 0.05
    ) -> None:
        self._conn = conn
        self._wal = Path(path).resolve()
        self.fallback_interval = fallback_interval
        self._version = self._read()
        self._poked = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._watch: DirectoryWatch | None = None
        self._written_at = -SETTLE  # monotonic time of the last write to the WAL we heard of
        self._seen_at = -SETTLE  # ... and of the last commit we saw

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection whose ``data_version`` is watched (the loop's thread only)."""
        return self._conn

    @property
    def watching(self) -> bool:
        """Whether the kernel wakes us (False: the fallback poll)."""
        return self._watch is not None

    def _read(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _setup(self) -> asyncio.AbstractEventLoop:
        self._loop = loop = asyncio.get_running_loop()
        try:
            watch = DirectoryWatch(self._wal.parent, [self._wal.name + "-wal"])
        except OSError as exc:
            interval = self.fallback_interval
            log.info("no inotify (%s): polling %s every %gs", exc, self._wal, interval)
            return loop
        loop.add_reader(watch.fileno(), self._on_readable)
        self._watch = watch
        return loop

    def _on_readable(self) -> None:
        if self._watch is not None and self._watch.read():
            self._written_at = time.monotonic()
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def poke(self) -> None:
        """Wake the waiter now (safe from any thread)."""
        self._poked = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._wake)

    def changed(self) -> bool:
        """Whether another connection committed since the last look."""
        version = self._read()
        if version == self._version:
            return False
        self._version = version
        self._seen_at = time.monotonic()
        return True

    async def wait(self, timeout: float) -> None:
        """Return on a commit by another connection, a poke, or after ``timeout`` seconds."""
        loop = self._loop or self._setup()
        deadline = time.monotonic() + timeout
        while True:
            if self._poked:
                self._poked = False
                return
            if self.changed():
                return
            now = time.monotonic()
            if now >= deadline:
                return
            nap = deadline - now
            if self._watch is None:
                nap = min(nap, self.fallback_interval)
            else:
                since_write = now - self._written_at
                if self._seen_at < self._written_at and since_write < EAGER:
                    # a commit is on its way (in its fsync)
                    nap = min(nap, 0.0 if since_write < SPIN else EAGER_NAP)
                elif since_write < SETTLE:  # another may hide behind the one we saw
                    nap = min(nap, max(0.001, since_write))
            # one future and one timer per nap: cheaper than wait_for on an Event
            self._waiter = waiter = loop.create_future()
            timer = loop.call_soon(self._wake) if nap <= 0 else loop.call_later(nap, self._wake)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None

    def release(self) -> None:
        """Stop watching and close the connection (sync, for generators' ``finally``)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(watch.fileno())
            watch.close()
        self._conn.close()

    async def close(self) -> None:
        self.release()


__all__ = ["SQLiteWaker"]
