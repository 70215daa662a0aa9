"""The catalog database (tenants, users, notifications, mail outbox) through SQLAlchemy Core.

It is the job engine's database too, so a use case can write its rows and enqueue its job
in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection

from ...jobs.storage.sqlite import enable_wal
from ...jobs.threads import Threads

T = TypeVar("T")

#: seconds a blocking caller waits for a pooled connection before the pool gives up
POOL_TIMEOUT = 10.0


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; use aware UTC datetimes")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(60), nullable=False, unique=True),
    Column("slug", String(40), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("admin_email", String(254), nullable=False),
    Column("initiator_user_id", String(36)),
    Column("job_id", String(40)),
    Column("last_error", String(200)),
    Column("failures", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text),
    Column("role", String(20), nullable=False),
    Column("tenant_id", String(36), index=True),
    Column("created_at", UTCDateTime, nullable=False),
)

password_tokens = Table(
    "password_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    #: "welcome" (set the first password) or "reset" (forgot password)
    Column("purpose", String(20), nullable=False, server_default="welcome"),
)

notifications = Table(
    "notifications",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("user_id", String(36), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("message", String(500), nullable=False),
    Column("key", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("read_at", UTCDateTime),
    #: the app page the notification is about (e.g. /tenants/<id>), if any
    Column("link", String(200)),
)

emails = Table(
    "email_outbox",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("to_addr", String(254), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("status", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("claimed_at", UTCDateTime),
)

installation = Table(
    "installation",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

tenant_database_claims = Table(
    "tenant_database_claims",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
)

admin_email_reservations = Table(
    "admin_email_reservations",
    metadata,
    Column("email", String(254), primary_key=True),
    Column("tenant_id", String(36), nullable=False, index=True),
)

tenant_repairs = Table(
    "tenant_repairs",
    metadata,
    Column("kind", String(40), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

#: failed logins per key ("email:<address>" or "client:<ip>"), for the login throttle
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),  # epoch seconds
    Column("blocked_until", Float, nullable=False),  # epoch seconds
)

#: access tokens ended by a logout, kept until they would have expired anyway
revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),  # epoch seconds
)


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL for a Diquis database URL (psycopg 3 for PostgreSQL)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """A SQLAlchemy engine; on SQLite: WAL, a busy timeout and write-safe transactions."""
    if not url.startswith("sqlite"):
        return create_engine(
            sqlalchemy_url(url), pool_pre_ping=True, pool_size=pool_size,
            max_overflow=max_overflow, pool_timeout=POOL_TIMEOUT,
        )  # fmt: skip
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=pool_size,
        max_overflow=max_overflow, pool_timeout=POOL_TIMEOUT,
    )  # fmt: skip

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        dbapi_connection.execute("PRAGMA busy_timeout = 30000")
        enable_wal(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so a transaction that reads then writes
        # waits for other writers instead of failing with "database is locked"
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class SqlTransaction:
    """A catalog transaction; adapters run their statements on :meth:`connect`'s connection.

    It begins on its first statement, in the same catalog thread call (no call of its own
    to connect and BEGIN), and commits and closes in one call at the end.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    @property
    def begun(self) -> bool:
        """Whether a statement has run (so there is something to commit or roll back)."""
        return self._connection is not None

    def connect(self) -> Connection:
        """The transaction's connection, begun on first use (in a catalog thread)."""
        if self._connection is None:
            connection = self._engine.connect()
            try:
                connection.begin()
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def finish(self, commit: bool) -> None:
        """Commit (or roll back) and give the connection back to the pool."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if commit:
                connection.commit()
            else:
                connection.rollback()
        finally:
            connection.close()


class DatabaseBusyError(Exception):
    """Every catalog connection stayed in use for the whole wait: the caller should retry."""


class Catalog:
    """The catalog database: run blocking SQL off the event loop, in transactions.

    Async callers take a permit before they touch a connection and queue for it in arrival
    order; there are exactly as many permits as pooled connections and as catalog threads
    (:class:`~diquis.jobs.threads.Threads`). So a thread never waits for a connection that a
    coroutine holds while that coroutine waits for a thread (the deadlock of sharing
    asyncio's small default executor with a bigger pool), and a caller that cannot get a
    permit within ``wait_timeout`` seconds gets :class:`DatabaseBusyError` instead of
    hanging. The pool opens connections as they are needed, up to ``pool_size +
    max_overflow``, and keeps them.
    """

    def __init__(
        self, url: str, *, pool_size: int = 5, max_overflow: int = 10, wait_timeout: float = 10.0
    ) -> None:
        self.url = url
        self.capacity = pool_size + max_overflow
        # every connection is kept once opened: SQLAlchemy closes an overflow connection at
        # its checkin and opens a new one at the next checkout, so under load a third of
        # the API's requests paid for a new PostgreSQL session (a backend process)
        self.engine = make_engine(url, self.capacity, 0)
        self._reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "postgresql"
            else self.engine  # SQLite: a read is local, and BEGIN is ours (make_engine)
        )
        self.wait_timeout = wait_timeout
        self._threads = Threads(self.capacity, "diquis-catalog")
        self._permits: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._permits is None or self._permits[0] is not loop:
            self._permits = (loop, asyncio.Semaphore(self.capacity))
        return self._permits[1]

    @contextlib.asynccontextmanager
    async def _permit(self) -> AsyncIterator[None]:
        semaphore = self._semaphore()
        try:
            if semaphore.locked():  # taken, or others queue already: wait in line, bounded
                await asyncio.wait_for(semaphore.acquire(), self.wait_timeout)
            else:  # free and nobody waiting: take it without wait_for's task
                await semaphore.acquire()
        except TimeoutError:
            raise DatabaseBusyError(
                f"no catalog connection became free within {self.wait_timeout:g} s"
            ) from None
        try:
            yield
        finally:
            semaphore.release()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._threads.call(fn, *args)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in its own committed transaction, in a catalog thread."""
        async with self._permit():
            return await self._call(self.run_sync, fn)

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in its own committed transaction."""
        with self.engine.begin() as conn:
            return fn(conn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn``, which only reads, in a catalog thread.

        On PostgreSQL without a transaction: each statement commits alone, so a lookup is
        one round trip, not BEGIN, SELECT and COMMIT. It reads what a transaction would: at
        PostgreSQL's default READ COMMITTED a transaction's statements share no snapshot
        either. On SQLite as :meth:`run`.
        """
        async with self._permit():
            return await self._call(self._read_sync, fn)

    def _read_sync(self, fn: Callable[[Connection], T]) -> T:
        with self._reader.begin() as conn:
            return fn(conn)

    async def in_tx(self, tx: object, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` inside an open :class:`SqlTransaction`."""
        if not isinstance(tx, SqlTransaction):
            raise TypeError(f"expected a catalog transaction, got {type(tx).__name__}")
        return await self._call(lambda: fn(tx.connect()))  # the tx holds a permit already

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlTransaction]:
        """A transaction spanning several adapters (e.g. a tenant row and its job).

        One catalog thread call per statement block plus one to commit: the connection and
        BEGIN come with the first block.
        """
        async with self._permit():
            tx = SqlTransaction(self.engine)
            try:
                yield tx
            except BaseException:
                if tx.begun:
                    await self._call(tx.finish, False)
                raise
            if tx.begun:
                await self._call(tx.finish, True)

    def dispose(self) -> None:
        """Close pooled connections and the catalog's threads."""
        self.engine.dispose()
        self._threads.shutdown()
