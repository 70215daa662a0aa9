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
from ..model import ClaimedJob, NewJob, Outcome, StateChange
from ..states import CLAIM, State
from .connector import Connector, Waker
from .schema import SCHEMA_VERSION, SQLITE_SCHEMA
from .sql import SqlStorage, latency_json
from .sqlite_waker import SQLiteWaker
from .statements import CLAIM_COLUMNS, FINISH, INSERT_HISTORY_FULL, finish_row, owned_runs

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

    def nowait_connection(self) -> sqlite3.Connection:
        """This thread's connection that never waits for a lock (busy_timeout 0): a write
        another connection holds the lock for fails at once with "database is locked"."""
        conn: sqlite3.Connection | None = getattr(self._local, "nowait", None)
        if conn is None:
            conn = self._local.nowait = self.connect()
            conn.execute("PRAGMA busy_timeout = 0")
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
        self.commit(conn)

    @contextlib.contextmanager
    def relaxed_commits(self) -> Iterator[None]:
        """This thread's commits inside run at ``synchronous=NORMAL``; the URL's setting after.

        For the worker's rounds that claim and write no outcome, so a pickup does not wait
        for an fsync. Why that is safe: in WAL mode a NORMAL commit is appended to the WAL,
        in order, just not fsynced; the next FULL commit on the database (any connection's:
        an outcome, an enqueue) or a checkpoint fsyncs the WAL up to it. So a claim can be
        lost only by an OS crash or power loss before then — never the finish that follows
        it, which is a later FULL commit and makes the claim durable first. A lost claim
        leaves the job Enqueued as it was; the worker that claimed it died in the same crash
        and ran nothing durable, so the job runs again, as after a lifeline rescue. (Only a
        job's side effects outside the database may repeat: the at-least-once contract.)
        A process crash loses nothing: the WAL is in the OS's page cache.
        """
        if self.synchronous not in ("full", "extra"):
            yield  # already no fsync per commit (the URL chose so)
            return
        conn = self._conn()
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")

    def commit(self, conn: sqlite3.Connection) -> None:
        """End ``conn``'s transaction (the commit and its fsync)."""
        conn.execute("COMMIT")

    def execute(self, conn: Any, query: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(query, params)

    def executemany(self, conn: Any, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            conn.executemany(query, rows)

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def is_connection_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError | sqlite3.InterfaceError)

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

    def create_jobs_nowait(
        self, jobs: Sequence[NewJob], now: float
    ) -> list[tuple[int, bool] | Exception] | None:
        """The jobs in one transaction if the write lock is free now, else None.

        The lock is tried once (no busy wait); if another connection holds it, nothing is
        written and the caller hands the batch to a thread that may wait. Once taken, WAL
        lets nothing stop the commit but its fsync, which then runs on the caller's thread
        (an event loop's, held as long as for a plain ``enqueue()``). Should the commit
        still report the database busy, the transaction is rolled back whole and None
        returned: the batch is written again elsewhere, never half and never twice.
        """
        conn = self.connector.nowait_connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return None
            raise
        try:
            if len(jobs) == 1:  # alone: no savepoint, its error undoes the transaction
                results: list[tuple[int, bool] | Exception] = [self.insert_job(conn, jobs[0], now)]
            else:
                results = self.insert_jobs(conn, jobs, now)
            self.connector.commit(conn)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                return None
            if len(jobs) == 1 and isinstance(exc, Exception):
                return [exc]
            raise
        return results

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

    def finish_in(self, conn: Any, server_id: str, outcomes: Sequence[Outcome], now: float) -> int:
        # the write transaction excludes every other writer: read which runs are still
        # ours once, then update them in one executemany (not a statement per outcome)
        if not outcomes:
            return 0
        owned = {
            (r[0], r[1])
            for r in conn.execute(
                owned_runs(len(outcomes)), (*(o.job_id for o in outcomes), server_id)
            )
        }
        written = [o for o in outcomes if (o.job_id, o.attempt) in owned]
        conn.executemany(FINISH, [finish_row(o, server_id, now) for o in written])
        self.after_finish(conn, server_id, now, written)
        return len(written)


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" (another connection's lock)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc)


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
