"""A SQLite worker's claim-only round commits at ``synchronous=NORMAL``, every other at the URL's.

The durability argument is in :meth:`SQLiteConnector.relaxed_commits`; here: which
commits are relaxed, and that the connection is always left at the URL's setting.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from diquis.jobs import JobEngine, State
from diquis.jobs.model import ClaimedJob, Outcome
from diquis.jobs.server import outcomes
from diquis.jobs.storage.sqlite import SQLiteConnector

SERVER = "s1:1:x"
FULL, NORMAL = 2, 1  # PRAGMA synchronous values


async def work(n: int) -> None:
    """A plain job."""


def make_engine(path: Path, query: str = "") -> JobEngine:
    engine = JobEngine(f"sqlite:///{path}{query}")
    engine.job(work)
    engine.storage.register_server(SERVER, "h", 1, ["default"], 4, engine.now())
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[JobEngine]:
    engine = make_engine(tmp_path / "jobs.db")
    yield engine
    engine.close()


def connection(engine: JobEngine) -> sqlite3.Connection:
    connector = engine.storage.connector  # type: ignore[attr-defined]
    assert isinstance(connector, SQLiteConnector)
    return connector._conn()


def synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


@contextlib.contextmanager
def commit_levels(conn: sqlite3.Connection) -> Iterator[list[int]]:
    """The synchronous level in force at each COMMIT on ``conn`` (a list filled as it runs)."""
    levels: list[int] = []
    level = [synchronous(conn)]

    def trace(statement: str) -> None:
        text = statement.strip().upper()
        if text.startswith("PRAGMA SYNCHRONOUS ="):
            level[0] = {"NORMAL": NORMAL, "FULL": FULL}[text.split("=")[1].strip()]
        elif text == "COMMIT":
            levels.append(level[0])

    conn.set_trace_callback(trace)
    try:
        yield levels
    finally:
        conn.set_trace_callback(None)


def succeeded(engine: JobEngine, job: ClaimedJob) -> Outcome:
    return outcomes.succeeded(job, None, time.perf_counter(), engine.now(), 3600)


def test_a_claim_only_round_commits_at_normal_and_restores_full(engine: JobEngine) -> None:
    conn = connection(engine)
    job_id = engine.enqueue(work, 1)
    assert synchronous(conn) == FULL
    with commit_levels(conn) as levels:
        _, claimed = engine.storage.finish_and_claim(SERVER, [], ["default"], 4, engine.now())
    assert [j.id for j in claimed] == [job_id]
    assert engine.get(job_id).state is State.PROCESSING
    assert levels == [NORMAL]
    assert synchronous(conn) == FULL


def test_a_round_with_outcomes_commits_at_full(engine: JobEngine) -> None:
    conn = connection(engine)
    first = engine.enqueue(work, 1)
    engine.enqueue(work, 2)
    [claimed] = engine.storage.claim(SERVER, ["default"], 1, engine.now())
    with commit_levels(conn) as levels:
        written, more = engine.storage.finish_and_claim(
            SERVER, [succeeded(engine, claimed)], ["default"], 4, engine.now()
        )
    assert written == 1 and len(more) == 1
    assert engine.get(first).state is State.SUCCEEDED
    assert levels == [FULL]
    assert synchronous(conn) == FULL


def test_a_failed_claim_only_round_restores_full(
    engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connection(engine)
    engine.enqueue(work, 1)

    def broken(*args: object, **kwargs: object) -> list[ClaimedJob]:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine.storage, "claim_in", broken)
    with pytest.raises(RuntimeError):
        engine.storage.finish_and_claim(SERVER, [], ["default"], 4, engine.now())
    assert synchronous(conn) == FULL


def test_a_url_without_fsync_per_commit_is_left_alone(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "jobs.db", "?synchronous=normal")
    try:
        conn = connection(engine)
        engine.enqueue(work, 1)
        with commit_levels(conn) as levels:
            _, claimed = engine.storage.finish_and_claim(SERVER, [], ["default"], 4, engine.now())
        assert len(claimed) == 1
        assert levels == [NORMAL]
        assert synchronous(conn) == NORMAL
    finally:
        engine.close()
