"""The catalog: its transactions and its pool, over its threads (``tests/jobs/test_threads.py``)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select
from sqlalchemy.engine import Connection

from diquis.tenancy.infrastructure.db import Catalog

# -- Catalog.begin, on SQLite and PostgreSQL -----------------------------------------------

_meta = MetaData()
_rows = Table("catalog_threads_rows", _meta, Column("n", Integer, primary_key=True))


async def test_a_transaction_commits_on_success_rolls_back_on_error_and_returns_its_connection(
    database_url: str,
) -> None:
    catalog = Catalog(database_url, pool_size=1, max_overflow=0)
    try:
        _meta.create_all(catalog.engine)

        async with catalog.begin() as tx:
            await catalog.in_tx(tx, lambda c: c.execute(insert(_rows).values(n=1)))
        with pytest.raises(ValueError, match="undo"):
            async with catalog.begin() as tx:
                await catalog.in_tx(tx, lambda c: c.execute(insert(_rows).values(n=2)))
                raise ValueError("undo")

        count = await catalog.run(
            lambda c: c.execute(select(func.count()).select_from(_rows)).scalar()
        )
        assert count == 1
        # one pooled connection and one permit: both were given back each time
        assert catalog.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        async with catalog.begin() as tx:
            assert await catalog.in_tx(tx, lambda c: c.execute(select(_rows.c.n)).scalar()) == 1
    finally:
        catalog.dispose()


async def test_a_read_runs_outside_a_transaction_and_leaves_the_connection_transactional(
    postgres_url: str,
) -> None:
    # one pooled connection: the read and the transactions after it share it
    catalog = Catalog(postgres_url, pool_size=1, max_overflow=0)

    def status(conn: Connection) -> TransactionStatus:
        conn.execute(select(1)).scalar()
        return conn.connection.driver_connection.info.transaction_status  # type: ignore[no-any-return,union-attr]

    try:
        _meta.create_all(catalog.engine)
        # no BEGIN before the SELECT, no COMMIT after it: a lookup is one round trip
        assert await catalog.read(status) is TransactionStatus.IDLE
        assert await catalog.run(status) is TransactionStatus.INTRANS
        # the connection the read used rolls a failed transaction back as before
        with pytest.raises(ValueError, match="undo"):
            async with catalog.begin() as tx:
                await catalog.in_tx(tx, lambda c: c.execute(insert(_rows).values(n=7)))
                raise ValueError("undo")
        assert (
            await catalog.read(
                lambda c: c.execute(select(func.count()).select_from(_rows)).scalar()
            )
            == 0
        )
    finally:
        catalog.dispose()


async def test_connections_opened_under_load_are_kept_for_the_next_calls(
    postgres_url: str,
) -> None:
    # PostgreSQL only: SQLite transactions take the write lock up front, so four never run
    # at once (and a new SQLite connection costs no server process)
    catalog = Catalog(postgres_url, pool_size=1, max_overflow=3)
    seen: set[int] = set()
    barrier = threading.Barrier(4, timeout=10)

    def hold(conn: Connection) -> None:
        seen.add(id(conn.connection.dbapi_connection))
        barrier.wait()  # four transactions at once: four connections

    def note(conn: Connection) -> None:
        seen.add(id(conn.connection.dbapi_connection))

    try:
        await asyncio.gather(*(catalog.run(hold) for _ in range(4)))
        assert len(seen) == 4
        assert catalog.engine.pool.checkedin() == 4  # type: ignore[attr-defined]
        await asyncio.gather(*(catalog.run(note) for _ in range(40)))
        assert len(seen) == 4  # the same four again: none was closed and reopened
    finally:
        catalog.dispose()
