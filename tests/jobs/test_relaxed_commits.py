"""A worker's claim-only round commits without waiting for the disk, every other durably.

SQLite: ``synchronous=NORMAL`` instead of the URL's level; PostgreSQL:
``synchronous_commit = off`` for that transaction. The durability argument is in
:meth:`SQLiteConnector.relaxed_commits` and :meth:`PostgresConnector.relaxed_commits`;
here: which commits are relaxed, and that connections are always left as they were.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diquis.jobs import JobEngine, State
from diquis.jobs.model import ClaimedJob, Outcome
from diquis.jobs.server import outcomes
from diquis.jobs.storage import postgres
from diquis.jobs.storage.postgres import PostgresConnector
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


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[JobEngine]:
    engine = JobEngine(postgres_url)
    engine.job(work)
    engine.storage.register_server(SERVER, "h", 1, ["default"], 4, engine.now())
    yield engine
    engine.close()


def commit_settings(engine: JobEngine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``synchronous_commit`` as each round's transaction ends (a list filled as it runs)."""
    seen: list[str] = []
    claim_in = engine.storage.claim_in  # type: ignore[attr-defined]

    def claim_and_look(conn: Any, *args: Any) -> list[ClaimedJob]:
        claimed: list[ClaimedJob] = claim_in(conn, *args)
        seen.append(conn.execute("SELECT current_setting('synchronous_commit')").fetchone()[0])
        return claimed

    monkeypatch.setattr(engine.storage, "claim_in", claim_and_look)
    return seen


def pool_setting(engine: JobEngine) -> str:
    connector = engine.storage.connector  # type: ignore[attr-defined]
    assert isinstance(connector, PostgresConnector)
    with connector.transaction() as conn:
        return str(conn.execute("SHOW synchronous_commit").fetchone()[0])


def test_postgres_claim_only_round_commits_without_waiting_for_the_flush(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two queues: the round's transaction (one queue takes the single statement, below)
    job_id = pg_engine.enqueue(work, 1)
    settings = commit_settings(pg_engine, monkeypatch)
    _, claimed = pg_engine.storage.finish_and_claim(
        SERVER, [], ["default", "other"], 4, pg_engine.now()
    )
    assert [j.id for j in claimed] == [job_id]
    assert pg_engine.get(job_id).state is State.PROCESSING
    assert settings == ["off"]
    assert pool_setting(pg_engine) == "on"  # for that transaction only


def test_postgres_claim_only_round_on_one_queue_is_one_relaxed_autocommit_statement(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage: Any = pg_engine.storage
    connector = storage.connector
    job_id = pg_engine.enqueue(work, 1)
    seen: list[tuple[bool, bool]] = []
    claim_plain = storage.claim_plain

    def claim_and_look(conn: Any, *args: Any) -> list[ClaimedJob] | None:
        seen.append((conn.autocommit, connector.relaxed))  # its own transaction, relaxed
        return claim_plain(conn, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(storage, "claim_plain", claim_and_look)
    monkeypatch.setattr(storage, "claim_in", None)  # the round's transaction is not used
    _, claimed = storage.finish_and_claim(SERVER, [], ["default"], 4, pg_engine.now())
    assert [j.id for j in claimed] == [job_id]
    assert pg_engine.get(job_id).state is State.PROCESSING
    assert seen == [(True, True)]
    assert not connector.relaxed
    assert pool_setting(pg_engine) == "on"
    # what makes that commit skip the flush: set_config(..., true) holds for the implicit
    # transaction of an autocommit statement, to its commit
    with connector.autocommit() as conn:
        row = conn.execute(
            "SELECT set_config('synchronous_commit', 'off', true),"
            " current_setting('synchronous_commit')"
        ).fetchone()
        assert row == ("off", "off")
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_postgres_queue_limit_takes_the_transaction_on_one_queue(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_engine.queue_limit("default", 1)
    first = pg_engine.enqueue(work, 1)
    pg_engine.enqueue(work, 2)
    settings = commit_settings(pg_engine, monkeypatch)
    _, claimed = pg_engine.storage.finish_and_claim(SERVER, [], ["default"], 4, pg_engine.now())
    assert [j.id for j in claimed] == [first]  # the limit holds
    assert settings == ["on"]  # a limited claim commits durably


def test_postgres_idle_claim_round_reads_no_queue_limits_of_its_own(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim statement looks for its queue's limit itself: with the limits' cache
    stale (as after every idle second), an empty poll is still one statement."""
    storage: Any = pg_engine.storage
    storage._queue_limits = None  # stale
    reads: list[object] = []
    monkeypatch.setattr(storage, "queue_limits", lambda conn=None: reads.append(conn) or {})
    assert storage.finish_and_claim(SERVER, [], ["default"], 4, pg_engine.now()) == (0, [])
    assert reads == []


def test_postgres_queue_limit_set_elsewhere_holds_at_once(
    pg_engine: JobEngine, postgres_url: str
) -> None:
    """A limit another process sets a moment after this one read the limits (its cache is
    fresh and empty) holds for this process's next claim-only round all the same."""
    storage: Any = pg_engine.storage
    assert storage.queue_limits() == {}  # read now: cached for a second
    other = JobEngine(postgres_url)
    try:
        other.queue_limit("default", 1)
    finally:
        other.close()
    first = pg_engine.enqueue(work, 1)
    pg_engine.enqueue(work, 2)
    _, claimed = storage.finish_and_claim(SERVER, [], ["default"], 4, pg_engine.now())
    assert [j.id for j in claimed] == [first]


def test_postgres_round_with_outcomes_commits_durably(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = pg_engine.enqueue(work, 1)
    pg_engine.enqueue(work, 2)
    [claimed] = pg_engine.storage.claim(SERVER, ["default"], 1, pg_engine.now())
    settings = commit_settings(pg_engine, monkeypatch)
    written, more = pg_engine.storage.finish_and_claim(
        SERVER, [succeeded(pg_engine, claimed)], ["default"], 4, pg_engine.now()
    )
    assert written == 1 and len(more) == 1
    assert pg_engine.get(first).state is State.SUCCEEDED
    assert settings == ["on"]


async def guarded(n: int) -> None:
    """A job under a mutex."""


def test_postgres_claim_under_a_mutex_commits_durably_even_alone(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_engine.job(guarded, mutex="one")
    job_id = pg_engine.enqueue(guarded, 1)
    settings = commit_settings(pg_engine, monkeypatch)
    _, claimed = pg_engine.storage.finish_and_claim(SERVER, [], ["default"], 4, pg_engine.now())
    assert [j.id for j in claimed] == [job_id]
    assert settings == ["on"]


def test_postgres_gated_jobs_seen_by_the_one_statement_are_not_asked_for_twice(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the one-statement claim learns that gated jobs wait; the round's transaction then
    # takes the careful path at once, and no later round skips its own plain claim
    pg_engine.job(guarded, mutex="one")
    first = pg_engine.enqueue(guarded, 1)
    plain_claims: list[object] = []
    plain_claimed = postgres._plain_claimed

    def counted(rows: list[Any]) -> list[ClaimedJob] | None:
        plain_claims.append(rows)
        return plain_claimed(rows)

    monkeypatch.setattr(postgres, "_plain_claimed", counted)
    storage: Any = pg_engine.storage
    _, claimed = storage.finish_and_claim(SERVER, [], ["default"], 4, pg_engine.now())
    assert [j.id for j in claimed] == [first]
    assert len(plain_claims) == 1
    second = pg_engine.enqueue(work, 2)  # no gated job waits now: the plain claim takes it
    _, claimed = storage.finish_and_claim(SERVER, [], ["default"], 4, pg_engine.now())
    assert [j.id for j in claimed] == [second]
    assert len(plain_claims) == 2


def test_postgres_plain_claims_after_a_mutex_claim_do_not_relax_the_round_again(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_engine.job(guarded, mutex="one")
    gated = pg_engine.enqueue(guarded, 1, queue="first")
    plain = pg_engine.enqueue(work, 2, queue="second")
    settings = commit_settings(pg_engine, monkeypatch)
    _, claimed = pg_engine.storage.finish_and_claim(
        SERVER, [], ["first", "second"], 4, pg_engine.now()
    )
    assert sorted(j.id for j in claimed) == sorted([gated, plain])
    assert settings == ["on"]


@pytest.mark.parametrize(
    ("step", "queues"),
    [("claim_in", ["default", "other"]), ("claim_plain", ["default"])],
    ids=["transaction", "one-statement"],
)
def test_postgres_relaxed_round_that_fails_leaves_the_thread_durable(
    pg_engine: JobEngine, monkeypatch: pytest.MonkeyPatch, step: str, queues: list[str]
) -> None:
    connector = pg_engine.storage.connector  # type: ignore[attr-defined]
    pg_engine.enqueue(work, 1)

    def broken(*args: object, **kwargs: object) -> list[ClaimedJob]:
        assert connector.relaxed
        raise RuntimeError("boom")

    monkeypatch.setattr(pg_engine.storage, step, broken)
    with pytest.raises(RuntimeError):
        pg_engine.storage.finish_and_claim(SERVER, [], queues, 4, pg_engine.now())
    assert not connector.relaxed
    assert pool_setting(pg_engine) == "on"
