"""PostgreSQL LISTEN/NOTIFY backplane; payloads too big for NOTIFY go through a table."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql

from .base import Backplane

log = logging.getLogger(__name__)

# NOTIFY refuses payloads of 8000 bytes or more; keep a margin for the one-byte marker.
INLINE_LIMIT = 7900
INLINE = "="
STORED = "@"

_CREATE = """
CREATE TABLE IF NOT EXISTS diquis_realtime_payloads (
    id BIGSERIAL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    payload TEXT NOT NULL
)
"""
_INSERT = "INSERT INTO diquis_realtime_payloads (payload) VALUES (%s) RETURNING id"
_SELECT = "SELECT payload FROM diquis_realtime_payloads WHERE id = %s"
_PRUNE = "DELETE FROM diquis_realtime_payloads WHERE created_at < now() - interval '5 minutes'"


class PostgresBackplane(Backplane):
    """NOTIFY on one channel; LISTEN on a dedicated connection."""

    def __init__(
        self, url: str, channel: str = "diquis_realtime", retry_delay: float = 1.0
    ) -> None:
        super().__init__()
        self._url = url
        self.channel = channel
        self._retry_delay = retry_delay
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._conn_lock = asyncio.Lock()
        self._listener: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._table_ready = False

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        return self._conn

    async def _ensure_table(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        if self._table_ready:
            return
        # Two processes creating the table at once: the loser's error is harmless.
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            await conn.execute(_CREATE)
        self._table_ready = True

    async def _publish(self, payload: str) -> None:
        async with self._conn_lock:
            conn = await self._connection()
            if len(payload.encode()) <= INLINE_LIMIT:
                await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, INLINE + payload))
                return
            await self._ensure_table(conn)
            async with conn.transaction():
                cur = await conn.execute(_INSERT, (payload,))
                row = await cur.fetchone()
                assert row is not None
                await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, f"{STORED}{row[0]}"))
                await conn.execute(_PRUNE)

    async def _fetch(self, payload_id: int) -> str | None:
        async with self._conn_lock:
            conn = await self._connection()
            cur = await conn.execute(_SELECT, (payload_id,))
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def _listen_connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        return conn

    async def _start_listening(self) -> None:
        self._listener = await self._listen_connection()
        self._task = asyncio.create_task(self._listen(), name="diquis-postgres-backplane")

    async def _listen(self) -> None:
        async def receive() -> None:
            assert self._listener is not None
            async for notify in self._listener.notifies():
                await self._receive(notify.payload)

        async def reconnect() -> None:
            self._listener = await self._listen_connection()

        await self._keep_receiving(
            receive, reconnect, "postgres backplane lost its LISTEN connection", self._retry_delay
        )

    async def _receive(self, raw: str) -> None:
        if raw.startswith(INLINE):
            await self._dispatch(raw[1:])
        elif raw.startswith(STORED):
            payload = await self._fetch(int(raw[1:]))
            if payload is None:
                log.warning("backplane payload %s was pruned before it was read", raw)
            else:
                await self._dispatch(payload)

    async def _close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for conn in (self._listener, self._conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._listener = None
        self._conn = None
