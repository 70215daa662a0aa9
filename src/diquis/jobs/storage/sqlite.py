"""SQLite storage: the embedded default. WAL mode, safe for several processes on one machine."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigurationError
from ..model import ClaimedJob, StateChange
from ..states import CLAIM, State
from .connector import Connector, Waker
from .schema import SCHEMA_VERSION, SQLITE_SCHEMA
from .sql import SqlStorage, latency_json
from .sqlite_waker import SQLiteWaker
from .statements import CLAIM_COLUMNS, INSERT_HISTORY_FULL

_SYNC_MODES = {"off", "normal", "full", "extra"}
# the state-change feed looks anyway this often, in case a wake-up was missed
_FEED_BACKUP_POLL = 5.0


def sqlite_path(url: str) -> tuple[Path, dict[str, str]]:
    """The database file and options named by a ``sqlite:///path?synchronous=full`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigurationError(f"not a sqlite URL: {url!r}")
    raw = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:
        raw = parts.netloc + "/" + raw
    if not raw or raw == ":memory:":
        raise ConfigurationError(
            f"sqlite URL {url!r} names no file; the job store must be a file that worker "
            "processes share, e.g. sqlite:///./.diquis/diquis.db"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return Path(raw), options


# one statement: pick the oldest Enqueued rows of a queue and mark them ours
CLAIM_QUEUE = (
    f"UPDATE diquis_jobs SET state = '{CLAIM.target.value}', reason = NULL, server_id = :server,"
    " attempt = attempt + 1, started_at = max(:now, coalesce(enqueued_at, :now))"
    f" WHERE id IN (SELECT id FROM diquis_jobs WHERE {CLAIM.sql_match()}"
    " AND queue = :queue AND gated = 0 ORDER BY id LIMIT :limit)"
    f" RETURNING {CLAIM_COLUMNS}"
)


class SQLiteConnector(Connector):
    """One SQLite file; each thread gets its own connection (autocommit; we BEGIN ourselves)."""

    name = "sqlite"

    def __init__(self, url: str, *, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.path, options = sqlite_path(url)
        self.synchronous = options.get("synchronous", "full").lower()
        if self.synchronous not in _SYNC_MODES:
            raise ConfigurationError(
                f"sqlite URL option synchronous={self.synchronous!r} is not one of "
                f"{sorted(_SYNC_MODES)}"
            )
        self.busy_timeout = busy_timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """A new connection with the engine's settings (autocommit; we BEGIN ourselves)."""
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        enable_wal(conn)
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        with self._lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
        return conn

    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def execute(self, conn: Any, query: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(query, params)

    def executemany(self, conn: Any, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            conn.executemany(query, rows)

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def driver_connection(self, connection: Any) -> Any:
        raw = _unwrap(connection)
        if not isinstance(raw, sqlite3.Connection):
            raise ConfigurationError(
                f"connection= must be a sqlite3 connection for {self.url}, got "
                f"{type(connection).__module__}.{type(connection).__qualname__}"
            )
        return raw

    def migrate(self) -> None:
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS diquis_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM diquis_schema").fetchone()
            current = row[0] or 0
            for version, statements in SQLITE_SCHEMA:
                if version > current:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO diquis_schema (version) VALUES (?)", (version,))
        assert SQLITE_SCHEMA[-1][0] == SCHEMA_VERSION

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    async def state_changes(self, poll_interval: float = 0.05) -> AsyncIterator[StateChange]:
        """Every history row committed from now on, in order, from any process.

        Woken by the kernel when the WAL is written (see :mod:`.sqlite_waker`);
        ``poll_interval`` is how often to look where inotify is missing.
        """
        waker = SQLiteWaker(self.connect(), self.path, fallback_interval=poll_interval)
        conn = waker.conn
        try:
            row = conn.execute("SELECT coalesce(max(id), 0) FROM diquis_job_history").fetchone()
            last = int(row[0])
            while True:
                rows = conn.execute(
                    "SELECT id, job_id, state FROM diquis_job_history WHERE id > ?"
                    " ORDER BY id LIMIT 1000",
                    (last,),
                ).fetchall()
                for hid, job_id, state in rows:
                    last = hid
                    yield StateChange(job_id, State(state))
                if len(rows) < 1000:
                    await waker.wait(_FEED_BACKUP_POLL)
        finally:
            waker.release()

    def waker(self, queues: Sequence[str]) -> Waker:
        return SQLiteWaker(self.connect(), self.path)


class SQLiteStorage(SqlStorage):
    """Jobs in one SQLite file (WAL), safe for several processes on one machine."""

    connector: SQLiteConnector

    def __init__(self, url: str, *, busy_timeout: float = 30.0) -> None:
        super().__init__(SQLiteConnector(url, busy_timeout=busy_timeout))
        self.url = url
        self.path = self.connector.path

    def claim_queue(
        self, conn: Any, server_id: str, queue: str, limit: int, now: float
    ) -> list[ClaimedJob]:
        rows = conn.execute(
            CLAIM_QUEUE, {"server": server_id, "now": now, "queue": queue, "limit": limit}
        ).fetchall()
        claimed = [ClaimedJob(*r) for r in sorted(rows)]
        conn.executemany(
            INSERT_HISTORY_FULL,
            [
                (j.id, State.PROCESSING.value, now, None, server_id, latency_json(j, now))
                for j in claimed
            ],
        )
        return claimed


def enable_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch the file to WAL (once per database; it sticks).

    Changing the journal mode needs a moment alone with the file, and SQLite reports
    "database is locked" at once instead of waiting when processes start together.
    """
    for _ in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        time.sleep(0.02)
    raise ConfigurationError(f"could not switch {conn} to WAL mode: the database stays locked")


def _unwrap(connection: Any) -> Any:
    """The DB-API connection under a SQLAlchemy Connection, or the connection itself."""
    inner = getattr(connection, "connection", None)  # SQLAlchemy Connection -> pool proxy
    driver = getattr(inner, "driver_connection", None)
    return driver if driver is not None else connection


__all__ = ["SQLiteConnector", "SQLiteStorage", "enable_wal", "sqlite_path"]
