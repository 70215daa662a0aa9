"""SQLite outbox backplane: publishers append rows, subscribers poll for new ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time

from .base import Backplane

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS diquis_realtime_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    payload TEXT NOT NULL
)
"""
_READ = "SELECT id, payload FROM diquis_realtime_outbox WHERE id > ? ORDER BY id LIMIT 1000"
RETENTION_SECONDS = 60.0


class SqliteOutboxBackplane(Backplane):
    """For several processes on one machine with no server; polls every `poll_interval` s."""

    def __init__(self, path: str, poll_interval: float = 0.05) -> None:
        super().__init__()
        self.path = path
        self.poll_interval = poll_interval
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._cursor_id = 0
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(
                self.path, timeout=10.0, check_same_thread=False, isolation_level=None
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def _insert(self, payload: str) -> None:
        with self._lock:
            db = self._open()
            now = time.time()
            db.execute(
                "INSERT INTO diquis_realtime_outbox (created, payload) VALUES (?, ?)",
                (now, payload),
            )
            if now - self._last_prune > RETENTION_SECONDS / 4:
                self._last_prune = now
                db.execute(
                    "DELETE FROM diquis_realtime_outbox WHERE created < ?",
                    (now - RETENTION_SECONDS,),
                )

    def _max_id(self) -> int:
        with self._lock:
            row = (
                self._open()
                .execute("SELECT COALESCE(MAX(id), 0) FROM diquis_realtime_outbox")
                .fetchone()
            )
        return int(row[0])

    def _read_after(self, after: int) -> list[tuple[int, str]]:
        with self._lock:
            rows = (
                self._open()
                .execute(
                    _READ,
                    (after,),
                )
                .fetchall()
            )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def _publish(self, payload: str) -> None:
        await asyncio.to_thread(self._insert, payload)

    async def _start_listening(self) -> None:
        self._cursor_id = await asyncio.to_thread(self._max_id)
        self._task = asyncio.create_task(self._poll(), name="diquis-sqlite-backplane")

    async def _poll(self) -> None:
        while True:
            try:
                rows = await asyncio.to_thread(self._read_after, self._cursor_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sqlite backplane poll failed")
                rows = []
            for row_id, payload in rows:
                self._cursor_id = row_id
                await self._dispatch(payload)
            if len(rows) < 1000:
                await asyncio.sleep(self.poll_interval)

    async def _close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
