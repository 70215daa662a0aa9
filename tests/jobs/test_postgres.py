"""PostgreSQL storage specifics: its connection pool, and the one-job insert statements."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from diquis.jobs import ConfigurationError, JobEngine
from diquis.jobs.model import NewJob
from diquis.jobs.states import State
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


def test_callers_that_wait_for_a_failing_first_connect_fail_with_it_not_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the opening caller holds the lock while it waits; eight callers queued behind it
    # must not each wait the whole timeout again in turn (a down database at start-up)
    monkeypatch.setattr(postgres.PostgresConnector, "open_timeout", 0.5)
    connector = postgres.PostgresConnector("postgresql://postgres@127.0.0.1:1/none")
    took: list[float] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        began = time.monotonic()
        try:
            connector.pool  # noqa: B018
        except BaseException as exc:
            errors.append(exc)
        took.append(time.monotonic() - began)

    callers = [threading.Thread(target=first_use) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=30)
    assert len(errors) == 8 and all(isinstance(e, postgres.PoolTimeout) for e in errors)
    assert max(took) < 0.5 * 4, took  # serialized, the last would wait 8 × 0.5 s


def test_a_bad_url_option_is_a_clear_error_at_once_without_the_password() -> None:
    engine = JobEngine("postgresql://postgres:s3cret@127.0.0.1:1/none?no_such_option=1")
    engine.job(targets.add)
    began = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        engine.enqueue(targets.add, 1, 2)
    assert time.monotonic() - began < 5  # not the first connect's time-out
    assert "no_such_option" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    engine.close()


PLAIN = [
    NewJob("add", "[1, 2]", "{}", "default", State.ENQUEUED),
    NewJob("add", "[1, 2]", "{}", "q2", State.ENQUEUED, tags=("a", "b"), recurring_id="r"),
    NewJob("add", "[3]", '{"x": "\'{,}"}', "default", State.SCHEDULED, scheduled_at=5000.0),
    NewJob(
        "add",
        "[]",
        "{}",
        "default",
        State.ENQUEUED,
        mutex_key="m",
        limit=2,
        rate_key="k",
        rate_n=3,
        rate_period=60.0,
        partition_key="p",
        reason="why",
    ),
]


def _row(conn: Any, job_id: int) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM diquis_jobs WHERE id = %s", (job_id,))
    names = [c.name for c in cur.description]
    row = dict(zip(names, cur.fetchone(), strict=True))
    del row["id"]
    history = conn.execute(
        "SELECT state, at, reason, server_id, data FROM diquis_job_history WHERE job_id = %s",
        (job_id,),
    ).fetchall()
    tags = conn.execute(
        "SELECT tag FROM diquis_job_tags WHERE job_id = %s ORDER BY tag", (job_id,)
    ).fetchall()
    return {"row": row, "history": history, "tags": tags}


@pytest.mark.parametrize(
    ("job", "chosen"),
    [
        (PLAIN[0], "_INSERT_LEAN"),
        (PLAIN[1], "_INSERT_PLAIN"),
        (PLAIN[2], "_INSERT_LEAN"),
        (PLAIN[3], "_INSERT_PLAIN"),
    ],
    ids=["plain", "tags", "scheduled", "gated"],
)
def test_the_one_job_statements_write_what_the_general_one_does(
    pg_engine: JobEngine, job: NewJob, chosen: str
) -> None:
    storage = pg_engine.storage
    assert isinstance(storage, postgres.PostgresStorage)
    statement, params = postgres._insert_one(job, 1234.5)
    assert statement is getattr(postgres, chosen)
    general = storage._insert_params(job, 1234.5)
    with storage.connector.transaction() as conn:
        [(one_id, kind)] = conn.execute(statement, params).fetchall()
        [(plain_id, plain_kind)] = conn.execute(postgres._INSERT_PLAIN, general).fetchall()
        [(general_id, general_kind)] = conn.execute(postgres._INSERT_JOB, general).fetchall()
        assert kind == plain_kind == general_kind == 1
        assert _row(conn, one_id) == _row(conn, plain_id) == _row(conn, general_id)


def test_a_parent_or_a_unique_key_takes_the_general_statement() -> None:
    job = PLAIN[0]
    for other in (
        NewJob(**{**job.__dict__, "parent_id": 1}),
        NewJob(**{**job.__dict__, "unique_key": "k"}),
    ):
        assert postgres._insert_one(other, 1.0)[0] is postgres._INSERT_JOB


@pytest.mark.parametrize(
    "change",
    [{"tags": ("t",)}, {"recurring_id": "r"}, {"mutex_key": "m"}, {"rate_n": 1}],
    ids=["tags", "recurring", "mutex", "rate"],
)
def test_a_job_with_more_than_the_lean_columns_takes_the_plain_statement(
    change: dict[str, Any],
) -> None:
    job = NewJob(**{**PLAIN[0].__dict__, **change})
    assert postgres._insert_one(job, 1.0)[0] is postgres._INSERT_PLAIN


# -- notifications: the lone-job insert sends its own, the trigger the rest -------------


def _heard(listener: Any) -> list[tuple[str, str]]:
    """Every notification ``listener`` has been sent so far, in order."""
    listener.execute("SELECT 1")  # a round trip: whatever was sent before it is in
    return [(n.channel, n.payload) for n in listener.notifies(timeout=0.2, stop_after=None)]


@pytest.fixture
def listener(pg_engine: JobEngine, postgres_url: str) -> Iterator[Any]:
    import psycopg

    pg_engine.storage  # noqa: B018  (the schema, trigger included)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("LISTEN diquis_state")
        conn.execute("LISTEN diquis_enqueued")
        yield conn


def test_the_trigger_skips_the_one_statement_that_says_it_notified(
    pg_engine: JobEngine, listener: Any
) -> None:
    a = pg_engine.enqueue(targets.add, 1, 1)
    b = pg_engine.enqueue(targets.add, 2, 2)
    _heard(listener)
    storage: Any = pg_engine.storage
    update = "UPDATE diquis_jobs SET reason = 'x' WHERE id = %s"
    with storage.connector.transaction() as conn:
        conn.execute("SELECT set_config('diquis.notified', 'on', true)")
        conn.execute(update, (a,))  # says it notified: the trigger sends nothing for it
        # the trigger took the flag back: the transaction's next statement is notified
        assert conn.execute("SELECT current_setting('diquis.notified')").fetchone() == ("off",)
        conn.execute(update, (b,))
    assert _heard(listener) == [("diquis_state", f"{b}:Enqueued"), ("diquis_enqueued", "default")]


def test_enqueue_and_claim_send_what_the_trigger_would_and_leave_no_flag(
    pg_engine: JobEngine, listener: Any, postgres_url: str
) -> None:
    import psycopg

    storage: Any = pg_engine.storage
    job_id = pg_engine.enqueue(targets.add, 1, 1)  # _INSERT_LEAN
    enqueued = ("diquis_enqueued", "default")
    assert _heard(listener) == [("diquis_state", f"{job_id}:Enqueued"), enqueued]
    later = pg_engine.schedule(targets.add, 1, 1, delay=3600)  # lean too: no queue to wake
    assert _heard(listener) == [("diquis_state", f"{later}:Scheduled")]
    # an idle server's claim (one autocommit statement), then one in a transaction
    _, [claimed] = storage.finish_and_claim("s1", [], ["default"], 5, time.time())
    assert claimed.id == job_id
    assert _heard(listener) == [("diquis_state", f"{job_id}:Processing")]
    again = pg_engine.enqueue(targets.add, 1, 1)
    _heard(listener)
    assert [j.id for j in storage.claim("s1", ["default"], 5, time.time())] == [again]
    assert _heard(listener) == [("diquis_state", f"{again}:Processing")]
    assert storage.claim("s1", ["default"], 5, time.time()) == []  # nothing: nothing sent
    assert _heard(listener) == []
    # in a caller's transaction: the statement after the enqueue is notified by the trigger
    other = pg_engine.enqueue(targets.add, 2, 2)
    _heard(listener)
    with psycopg.connect(postgres_url) as conn:
        mine = pg_engine.enqueue(targets.add, 3, 3, connection=conn)
        conn.execute("UPDATE diquis_jobs SET reason = 'x' WHERE id = %s", (other,))
    assert _heard(listener) == [
        ("diquis_state", f"{mine}:Enqueued"),
        enqueued,
        ("diquis_state", f"{other}:Enqueued"),
    ]


def test_a_claim_of_many_jobs_is_sent_in_chunks_of_400(pg_engine: JobEngine, listener: Any) -> None:
    # a NOTIFY payload is at most 8,000 bytes: the trigger sends 400 changes at a time
    ids = [pg_engine.enqueue(targets.add, i, i) for i in range(450)]
    _heard(listener)
    storage: Any = pg_engine.storage
    _, claimed = storage.finish_and_claim("s1", [], ["default"], 450, time.time())
    assert len(claimed) == 450
    payloads = [p for channel, p in _heard(listener) if channel == "diquis_state"]
    assert len(payloads) == 2
    sent = sorted(int(item.split(":")[0]) for p in payloads for item in p.split(","))
    assert sent == sorted(ids)
    assert {item.split(":")[1] for p in payloads for item in p.split(",")} == {"Processing"}
