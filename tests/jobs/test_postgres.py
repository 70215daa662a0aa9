"""PostgreSQL storage specifics: its connection pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from diquis.jobs import JobEngine
from diquis.jobs.storage import postgres

from . import targets


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[JobEngine]:
    engine = JobEngine(postgres_url)
    targets.register_all(engine)
    yield engine
    engine.close()


def test_a_lone_caller_keeps_to_one_connection(pg_engine: JobEngine) -> None:
    # a pool hands its connections out in turn: a second one, opened because the first
    # caller queued behind the pool's first connect, would switch server process every call
    for i in range(20):
        pg_engine.enqueue(targets.add, i, i)
    pool = pg_engine.storage.connector.pool  # type: ignore[attr-defined]
    assert pool.get_stats()["pool_size"] == 1


def test_a_database_that_is_down_fails_the_call_and_the_next_call_tries_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres.PostgresConnector, "open_timeout", 0.5)
    connector = postgres.PostgresConnector("postgresql://postgres@127.0.0.1:1/none")
    before = set(threading.enumerate())
    for _ in range(2):
        with pytest.raises(postgres.PoolTimeout):
            connector.pool  # noqa: B018
        assert connector._pool is None
    # the failed pools were closed: none keeps trying to connect in the background
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("diquis-jobs")]
    connector.url = postgres_url  # the database is back
    with connector.transaction() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    connector.close()
