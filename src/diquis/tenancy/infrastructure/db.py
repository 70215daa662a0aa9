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

T = TypeVar("T")


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


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine; on SQLite: WAL, a busy timeout and write-safe transactions."""
    if not url.startswith("sqlite"):
        return create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=5)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

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
    """An open catalog transaction; adapters run their statements on ``connection``."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection


class Catalog:
    """The catalog database: run blocking SQL off the event loop, in transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in its own committed transaction, in a worker thread."""
        return await asyncio.to_thread(self.run_sync, fn)

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in its own committed transaction."""
        with self.engine.begin() as conn:
            return fn(conn)

    async def in_tx(self, tx: object, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` inside an open :class:`SqlTransaction`."""
        if not isinstance(tx, SqlTransaction):
            raise TypeError(f"expected a catalog transaction, got {type(tx).__name__}")
        return await asyncio.to_thread(fn, tx.connection)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlTransaction]:
        """A transaction spanning several adapters (e.g. a tenant row and its job)."""
        conn = await asyncio.to_thread(self.engine.connect)
        try:
            transaction = await asyncio.to_thread(conn.begin)
            try:
                yield SqlTransaction(conn)
            except BaseException:
                await asyncio.to_thread(transaction.rollback)
                raise
            await asyncio.to_thread(transaction.commit)
        finally:
            await asyncio.to_thread(conn.close)

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
