"""Enqueue inside the caller's transaction: the job exists exactly when the caller commits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy

from diquis.jobs import ConfigurationError, JobEngine, State

from .targets import add


def count(engine: JobEngine) -> int:
    return engine.monitoring.count_jobs()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> JobEngine:
    engine = JobEngine(f"sqlite:///{tmp_path}/app.db")
    engine.job(add)
    engine.storage.migrate()
    return engine


@pytest.fixture
def pg_engine(postgres_url: str) -> JobEngine:
    engine = JobEngine(postgres_url)
    engine.job(add)
    engine.storage.migrate()
    return engine


def test_sqlite3_connection(sqlite_engine: JobEngine, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.execute("CREATE TABLE tenants (name TEXT UNIQUE)")
    conn.commit()
    conn.execute("INSERT INTO tenants VALUES ('acme')")
    sqlite_engine.enqueue(add, 1, 2, connection=conn, tags=["tenant:acme"])
    conn.rollback()
    assert count(sqlite_engine) == 0
    conn.execute("INSERT INTO tenants VALUES ('acme')")
    job_id = sqlite_engine.enqueue(add, 1, 2, connection=conn, tags=["tenant:acme"])
    conn.commit()
    assert sqlite_engine.get(job_id).state is State.ENQUEUED
    assert sqlite_engine.get(job_id).tags == ("tenant:acme",)
    assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (1,)
    conn.close()


def test_sqlalchemy_connection_on_sqlite(sqlite_engine: JobEngine, tmp_path: Path) -> None:
    db = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/app.db")
    with pytest.raises(RuntimeError), db.begin() as conn:
        sqlite_engine.enqueue(add, 1, 2, connection=conn)
        raise RuntimeError("the use case failed")
    assert count(sqlite_engine) == 0
    with db.begin() as conn:
        sqlite_engine.enqueue(add, 1, 2, connection=conn)
    assert count(sqlite_engine) == 1
    db.dispose()


def test_psycopg_connection(pg_engine: JobEngine, postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE tenants (name TEXT UNIQUE)")
        conn.commit()
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute("INSERT INTO tenants VALUES ('acme')")
            pg_engine.enqueue(add, 1, 2, connection=conn)
            conn.execute("INSERT INTO tenants VALUES ('acme')")  # the use case fails late
        assert count(pg_engine) == 0
        with conn.transaction():
            conn.execute("INSERT INTO tenants VALUES ('acme')")
            job_id = pg_engine.enqueue(add, 1, 2, connection=conn)
        assert pg_engine.get(job_id).state is State.ENQUEUED


async def test_psycopg_async_connection(pg_engine: JobEngine, postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        async with conn.transaction(force_rollback=True):
            await pg_engine.aenqueue(add, 1, 2, connection=conn)
        assert count(pg_engine) == 0
        async with conn.transaction():
            job_id = await pg_engine.aenqueue(add, 1, 2, connection=conn, unique_key="k")
            again = await pg_engine.aenqueue(add, 1, 2, connection=conn, unique_key="k")
        assert job_id == again
        assert pg_engine.get(job_id).state is State.ENQUEUED


def test_sqlalchemy_connection_on_postgres(pg_engine: JobEngine, postgres_url: str) -> None:
    db = sqlalchemy.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with db.connect() as conn:
        pg_engine.enqueue(add, 1, 2, connection=conn)
        conn.rollback()
    assert count(pg_engine) == 0
    with db.begin() as conn:
        pg_engine.enqueue(add, 1, 2, connection=conn)
    assert count(pg_engine) == 1
    db.dispose()


def test_a_foreign_connection_is_refused_clearly(sqlite_engine: JobEngine) -> None:
    with pytest.raises(ConfigurationError, match="sqlite3 connection"):
        sqlite_engine.enqueue(add, 1, 2, connection=object())
