"""How an idle SQLite reader learns, at once and for free, that another connection committed.

Every commit in WAL mode writes the ``<db>-wal`` file, so the kernel tells us (inotify on
the directory: see :mod:`.inotify`) the moment some process writes it; ``PRAGMA
data_version`` — shared memory, no disk — then says whether a commit by another
connection is visible yet. The two are needed together: inotify fires on the write of
the commit's frames, a moment *before* the commit is published (after its fsync), so
after a write we look every 0.2 ms until the commit shows (a timerfd: see
:mod:`.timerfd`; the loop's own timers wait whole milliseconds, and spinning on every
turn of the loop instead took a CPU the writer's fsync wanted: a lone enqueue in another
process returned ~0.5 ms later, measured), for at most 20 ms, then every millisecond
until 0.2 s, then — inotify merges events, so another commit may hide behind the one we
saw — at growing intervals (1 ms, 2 ms, 4 ms, ... half a second). A quiet database
costs nothing at all.

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
from .timerfd import Ticker

log = logging.getLogger(__name__)

# after a write to the WAL: look every TICK seconds until a commit shows, for at most
# TICKING seconds (a local disk's fsync), then every EAGER_NAP seconds up to EAGER seconds
# after the write (a slow disk's fsync, or a write that was rolled back), then at growing
# intervals until SETTLE seconds after it
TICK, TICKING = 0.0002, 0.02
EAGER, EAGER_NAP = 0.2, 0.001  # (epoll waits whole milliseconds anyway)
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
        self._ticker: Ticker | None = None  # wakes us every TICK while a commit is on its way
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
        try:
            ticker = Ticker()
        except OSError as exc:  # then the loop's millisecond timers
            log.info("no timerfd (%s): looking for commits every %gs", exc, EAGER_NAP)
            return loop
        loop.add_reader(ticker.fileno(), self._on_tick)
        self._ticker = ticker
        return loop

    def _on_tick(self) -> None:
        if self._ticker is not None and self._ticker.read():
            self._wake()

    def _ticking(self, on: bool) -> None:
        ticker = self._ticker
        if ticker is not None:
            if on:
                ticker.start(TICK)
            else:
                ticker.stop()

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
        try:
            await self._wait(loop, time.monotonic() + timeout)
        finally:
            self._ticking(False)

    async def _wait(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        while True:
            if self._poked:
                self._poked = False
                return
            if self.changed():
                return
            now = time.monotonic()
            if now >= deadline:
                return
            nap, ticking = deadline - now, False
            if self._watch is None:
                nap = min(nap, self.fallback_interval)
            else:
                since_write = now - self._written_at
                coming = self._seen_at < self._written_at  # a commit in its fsync
                # while ticking, every tick looks again: no timer below
                ticking = coming and since_write < TICKING and self._ticker is not None
                self._ticking(ticking)
                if coming and since_write < EAGER:
                    nap = min(nap, EAGER_NAP)
                elif since_write < SETTLE:  # another may hide behind the one we saw
                    nap = min(nap, max(0.001, since_write))
            # one future and one timer per nap: cheaper than wait_for on an Event
            self._waiter = waiter = loop.create_future()
            timer = None if ticking else loop.call_later(nap, self._wake)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                self._waiter = None

    def release(self) -> None:
        """Stop watching and close the connection (sync, for generators' ``finally``)."""
        for source in (self._watch, self._ticker):
            if source is not None:
                if self._loop is not None and not self._loop.is_closed():
                    with contextlib.suppress(Exception):
                        self._loop.remove_reader(source.fileno())
                source.close()
        self._watch = self._ticker = None
        self._conn.close()

    async def close(self) -> None:
        self.release()


__all__ = ["SQLiteWaker"]
