"""Fixtures for the job engine: one contract suite, run against every storage backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from diquis.jobs import JobEngine


class FakeClock:
    """A clock tests move by hand, so retries and schedules need no sleeping."""

    def __init__(self, start: dt.datetime = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)):
        self.value = start.timestamp()

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds

    def set(self, when: dt.datetime) -> None:
        self.value = when.timestamp()


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty job store URL for each backend (``memory://``: diquis.jobs.testing).

    Tests marked ``needs_database`` (a caller's transaction, several processes, concurrent
    migrations) skip the in-memory store, which has none of those.
    """
    if request.param == "memory":
        if request.node.get_closest_marker("needs_database"):
            pytest.skip("needs a database: the in-memory store has no transactions or processes")
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(storage_url: str, clock: FakeClock) -> Iterator[JobEngine]:
    """An engine on a fresh store with a hand-moved clock."""
    eng = JobEngine(storage_url, clock=clock)
    yield eng
    eng.close()


@pytest.fixture
def live_engine(storage_url: str) -> Iterator[JobEngine]:
    """An engine on a fresh store with the real clock, for tests with a running server."""
    eng = JobEngine(storage_url)
    yield eng
    eng.close()
