"""psycopg AsyncConnections per event loop, for the group commits written on that loop.

An async connection belongs to the loop it was opened on, so each loop gets its own; a
loop writes at most ``per_loop`` batches at once, and keeps that many. A connection is
opened on first use (autocommit), lent out while a batch is written, and dropped when that
went wrong
(a connection error, a cancellation, a transaction left open): that batch fails, the next
opens a fresh one. :meth:`LoopConnections.close` closes the idle ones at once and those
lent out as they come back; connections of loops that have closed are closed as found.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus


class LoopConnections:
    """Async connections to one PostgreSQL database, up to ``per_loop`` per event loop."""

    def __init__(self, url: str, per_loop: int = 2) -> None:
        self.url = url
        self.per_loop = per_loop
        self._idle: dict[asyncio.AbstractEventLoop, list[psycopg.AsyncConnection[Any]]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by close(): connections lent before are not kept

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """This loop's connection, idle and in autocommit, for one batch."""
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = self._idle.get(loop)
            conn = mine.pop() if mine else None
            generation = self._generation
            stale = [c for lp, cs in self._idle.items() if lp.is_closed() for c in cs]
            for lp in [lp for lp in self._idle if lp.is_closed()]:
                del self._idle[lp]
        for old in stale:
            _close(old)
        if conn is None or conn.broken or conn.closed:
            conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        try:
            yield conn
        except BaseException:
            _close(conn)  # its state is unknown: nobody gets it again
            raise
        usable = (
            not conn.broken
            and conn.info.transaction_status is TransactionStatus.IDLE
            and conn.autocommit
        )
        with self._lock:
            kept = self._idle.setdefault(loop, [])
            if usable and generation == self._generation and len(kept) < self.per_loop:
                kept.append(conn)
                return
        _close(conn)

    def close(self) -> None:
        """Close the idle connections now, the ones in use when their batch is done."""
        with self._lock:
            conns = [conn for kept in self._idle.values() for conn in kept]
            self._idle.clear()
            self._generation += 1
        for conn in conns:
            _close(conn)


def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    # from any thread and without its loop: end the session at the libpq level (the
    # connection then counts as closed, so psycopg does not warn when it is collected)
    with contextlib.suppress(Exception):
        conn.pgconn.finish()
