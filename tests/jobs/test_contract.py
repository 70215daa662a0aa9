"""The storage contract: every behaviour of the engine, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from diquis.jobs import (
    DuplicateJobError,
    InvalidStateError,
    JobArgumentError,
    JobEngine,
    JobFilter,
    JobNotFoundError,
    State,
    UnknownTargetError,
)
from diquis.jobs.model import NewJob
from diquis.jobs.retry import hangfire_backoff

from . import targets
from .conftest import FakeClock
from .targets import CALLS, GREETINGS, Greeter, add, boom, fatal, sync_echo


@pytest.fixture(autouse=True)
def _registered(engine: JobEngine) -> None:
    targets.register_all(engine)
    CALLS.clear()
    GREETINGS.clear()


def states(engine: JobEngine, job_id: int) -> list[State]:
    return [h.state for h in engine.get(job_id).history]


async def test_fire_and_forget_runs_once_with_full_history(engine: JobEngine) -> None:
    job_id = engine.enqueue(add, 2, 3, tags=["tenant:acme"])
    assert engine.get(job_id).state is State.ENQUEUED
    assert await engine.drain() == 1
    job = engine.get(job_id)
    assert job.state is State.SUCCEEDED
    assert job.result == 5
    assert job.attempt == 1
    assert states(engine, job_id) == [State.ENQUEUED, State.PROCESSING, State.SUCCEEDED]
    assert "duration_ms" in job.history[-1].data
    assert job.history[1].server_id is not None
    assert job.tags == ("tenant:acme",)
    assert CALLS == [("add", (2, 3))]
    assert await engine.drain() == 0


async def test_sync_targets_and_class_methods_with_a_factory(engine: JobEngine) -> None:
    a = engine.enqueue(sync_echo, {"nested": [1, "é", None]})
    b = engine.enqueue(Greeter.greet, "Ada")
    await engine.drain()
    assert engine.get(a).result == {"nested": [1, "é", None]}
    assert engine.get(b).result == "Hello, Ada"
    assert GREETINGS == ["Hello, Ada"]


async def test_arguments_keep_their_types(engine: JobEngine) -> None:
    value = {
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "price": Decimal("10.25"),
        "raw": b"\x00\xff",
        "$tricky": 1,
    }
    job_id = engine.enqueue(sync_echo, value)
    assert engine.get(job_id).args == [value]
    await engine.drain()
    assert [("sync_echo", value)] == CALLS


def test_bad_arguments_fail_at_enqueue_with_the_argument_named(engine: JobEngine) -> None:
    with pytest.raises(JobArgumentError, match=r"kwargs\['value'\]\[0\].*object"):
        engine.enqueue(sync_echo, value=[object()])
    with pytest.raises(JobArgumentError, match="arguments do not fit"):
        engine.enqueue(add, 1)
    with pytest.raises(JobArgumentError, match="nan"):
        engine.enqueue(sync_echo, float("nan"))
    assert engine.monitoring.count_jobs() == 0


def test_unregistered_targets_are_refused_at_enqueue(engine: JobEngine) -> None:
    def not_registered() -> None: ...

    with pytest.raises(UnknownTargetError, match="not a registered job target"):
        engine.enqueue(not_registered)
    with pytest.raises(UnknownTargetError, match=r"os\.system"):
        engine.enqueue("os.system", "echo hacked")


async def test_a_forged_row_never_imports_or_calls_its_target(engine: JobEngine) -> None:
    forged = NewJob(
        target="os.system",
        args='["touch /tmp/diquis-forged"]',
        kwargs="{}",
        queue="default",
        state=State.ENQUEUED,
    )
    job_id, _ = engine.storage.create_job(forged, engine.now())
    await engine.drain()
    job = engine.get(job_id)
    assert job.state is State.FAILED
    assert "not registered" in (job.error or "")
    assert job.retry_count == 0  # never retried


async def test_schedule_runs_only_when_due(engine: JobEngine, clock: FakeClock) -> None:
    job_id = engine.schedule(add, 1, 1, delay=60)
    job = engine.get(job_id)
    assert job.state is State.SCHEDULED
    assert job.scheduled_at == dt.datetime.fromtimestamp(clock() + 60, dt.UTC)
    assert await engine.drain() == 0
    clock.advance(59)
    assert await engine.drain() == 0
    clock.advance(1)
    assert await engine.drain() == 1
    assert states(engine, job_id) == [
        State.SCHEDULED,
        State.ENQUEUED,
        State.PROCESSING,
        State.SUCCEEDED,
    ]
    at = dt.datetime.fromtimestamp(clock() + 3600, dt.UTC)
    later = engine.schedule(add, 2, 2, at=at)
    assert engine.get(later).scheduled_at == at
    with pytest.raises(JobArgumentError, match="naive"):
        engine.schedule(add, 1, 1, at=dt.datetime(2030, 1, 1))
    with pytest.raises(JobArgumentError, match="exactly one"):
        engine.schedule(add, 1, 1)


async def test_retries_follow_the_policy_then_dead_letter(
    engine: JobEngine, clock: FakeClock
) -> None:
    job_id = engine.enqueue(boom, "kaput")
    await engine.drain()
    job = engine.get(job_id)
    assert job.state is State.SCHEDULED
    assert job.retry_count == 1
    assert job.scheduled_at == dt.datetime.fromtimestamp(clock() + 10, dt.UTC)
    failed = [h for h in job.history if h.state is State.FAILED]
    assert failed[0].data["exception_type"] == "builtins.RuntimeError"
    assert failed[0].data["exception_message"] == "kaput"
    assert "Traceback" in failed[0].data["stack_trace"]
    assert "Retry attempt 1 of 2" in (job.history[-1].reason or "")
    clock.advance(9)
    assert await engine.drain() == 0
    clock.advance(1)
    assert await engine.drain() == 1
    assert engine.get(job_id).retry_count == 2
    clock.advance(20)
    assert await engine.drain() == 1
    job = engine.get(job_id)
    assert job.state is State.FAILED  # the dead-letter list
    assert job.error == "RuntimeError: kaput"
    assert [c for c in CALLS if c[0] == "boom"] == [("boom", "kaput")] * 3
    clock.advance(10_000)
    assert await engine.drain() == 0
    assert engine.monitoring.count_jobs(state=State.FAILED) == 1


async def test_exception_filters_skip_retries(engine: JobEngine) -> None:
    job_id = engine.enqueue(fatal)
    await engine.drain()
    assert engine.get(job_id).state is State.FAILED
    assert engine.get(job_id).retry_count == 0


def test_default_backoff_is_hangfires_curve() -> None:
    for n in (1, 2, 5, 10):
        for _ in range(50):
            delay = hangfire_backoff(n)
            assert (n - 1) ** 4 + 15 <= delay <= (n - 1) ** 4 + 15 + 29 * n


async def test_requeue_a_failed_job_gives_it_a_fresh_start(engine: JobEngine) -> None:
    job_id = engine.enqueue(fatal)
    await engine.drain()
    assert engine.requeue(job_id) is State.FAILED
    assert engine.get(job_id).state is State.ENQUEUED
    await engine.drain()
    assert engine.get(job_id).state is State.FAILED
    assert engine.get(job_id).attempt == 2
    with pytest.raises(JobNotFoundError):
        engine.requeue(987654)


async def test_continuations(engine: JobEngine, clock: FakeClock) -> None:
    parent = engine.enqueue(add, 1, 2)
    child = engine.continue_with(parent, sync_echo, "after")
    assert engine.get(child).state is State.AWAITING
    await engine.drain()
    assert engine.get(child).state is State.SUCCEEDED
    assert engine.get(child).parent_id == parent
    # parent already finished: the continuation starts at once
    late = engine.continue_with(parent, sync_echo, "late")
    assert engine.get(late).state is State.ENQUEUED
    # on="succeeded" waits through a failure; on="any" runs after it
    bad = engine.enqueue(fatal)
    only_ok = engine.continue_with(bad, sync_echo, "never")
    any_end = engine.continue_with(bad, sync_echo, "always", on="any")
    await engine.drain()
    assert engine.get(only_ok).state is State.AWAITING
    assert engine.get(any_end).state is State.SUCCEEDED
    # deleting the parent deletes an on="succeeded" continuation
    engine.delete(bad)
    assert engine.get(only_ok).state is State.DELETED
    with pytest.raises(JobNotFoundError, match="parent job 424242"):
        engine.continue_with(424242, sync_echo, "x")
    with pytest.raises(JobArgumentError, match="on="):
        engine.continue_with(parent, sync_echo, "x", on="failed")


async def test_unique_keys_hold_while_the_job_lives(engine: JobEngine) -> None:
    first = engine.enqueue(add, 1, 1, unique_key="sum")
    assert engine.enqueue(add, 1, 1, unique_key="sum") == first
    assert engine.schedule(add, 1, 1, delay=5, unique_key="sum") == first
    assert engine.monitoring.count_jobs() == 1
    await engine.drain()
    second = engine.enqueue(add, 1, 1, unique_key="sum")
    assert second != first
    # requeueing the finished one while a live one holds the key is refused cleanly
    with pytest.raises(DuplicateJobError):
        engine.requeue(first)


async def test_tags_are_searchable(engine: JobEngine) -> None:
    acme = [engine.enqueue(add, i, i, tags=["tenant:acme", "kind:sum"]) for i in range(3)]
    engine.enqueue(add, 9, 9, tags=["tenant:globex"])
    found = engine.monitoring.list_jobs(tag="tenant:acme")
    assert sorted(j.id for j in found) == sorted(acme)
    assert engine.monitoring.count_jobs(tag="kind:sum") == 3
    assert engine.monitoring.list_jobs(tag="tenant:acme", limit=1)[0].id == max(acme)
    with pytest.raises(JobArgumentError, match="tags must be a list"):
        engine.enqueue(add, 1, 1, tags="tenant:acme")


async def test_queues_are_served_in_priority_order(engine: JobEngine) -> None:
    low = [engine.enqueue(sync_echo, f"low{i}", queue="low") for i in range(3)]
    high = [engine.enqueue(sync_echo, f"high{i}", queue="critical") for i in range(3)]
    other = engine.enqueue(sync_echo, "other", queue="elsewhere")
    await engine.drain(queues=["critical", "low"], concurrency=1)
    assert [c[1] for c in CALLS] == ["high0", "high1", "high2", "low0", "low1", "low2"]
    assert all(engine.get(j).state is State.SUCCEEDED for j in low + high)
    assert engine.get(other).state is State.ENQUEUED


async def test_delete_and_requeue_rules(engine: JobEngine) -> None:
    job_id = engine.enqueue(add, 1, 1)
    assert engine.delete(job_id) is State.ENQUEUED
    assert await engine.drain() == 0
    assert engine.get(job_id).state is State.DELETED
    with pytest.raises(InvalidStateError, match="Deleted"):
        engine.delete(job_id)
    engine.requeue(job_id)
    await engine.drain()
    assert engine.get(job_id).state is State.SUCCEEDED
    with pytest.raises(JobNotFoundError):
        engine.get(123456789)


async def test_expiration_keeps_failed_jobs(engine: JobEngine, clock: FakeClock) -> None:
    ok = engine.enqueue(add, 1, 1)
    bad = engine.enqueue(fatal)
    gone = engine.enqueue(add, 2, 2)
    engine.delete(gone)
    await engine.drain()
    assert engine.get(ok).expire_at == dt.datetime.fromtimestamp(clock() + 86400, dt.UTC)
    assert engine.storage.expire(clock() + 86399) == 0
    assert engine.storage.expire(clock() + 86401) == 2
    with pytest.raises(JobNotFoundError):
        engine.get(ok)
    assert engine.get(bad).state is State.FAILED


async def test_jobs_of_a_dead_server_are_rescued(engine: JobEngine, clock: FakeClock) -> None:
    job_id = engine.enqueue(add, 1, 1)
    storage = engine.storage
    storage.register_server("dead:1", "host", 1, ["default"], 1, clock())
    storage.register_server("live:2", "host", 2, ["default"], 1, clock())
    [claimed] = storage.claim("dead:1", ["default"], 1, clock())
    assert claimed.id == job_id
    clock.advance(20)
    storage.heartbeat("live:2", clock(), [])
    assert storage.rescue(clock(), 15.0) == [job_id]
    job = engine.get(job_id)
    assert job.state is State.ENQUEUED
    assert "dead:1 stopped heart-beating" in (job.reason or "")
    assert [s.id for s in engine.monitoring.list_servers()] == ["live:2"]
    # the dead server's late result is discarded: the job is no longer its own
    alive, lost = storage.heartbeat("dead:1", clock(), [(job_id, claimed.attempt)])
    assert (alive, lost) == (False, [(job_id, claimed.attempt)])
    await engine.drain()
    assert engine.get(job_id).state is State.SUCCEEDED
    assert engine.get(job_id).attempt == 2


async def test_recurring_jobs_follow_cron_and_misfire_rules(
    engine: JobEngine, clock: FakeClock
) -> None:
    clock.set(dt.datetime(2026, 3, 10, 10, 30, tzinfo=dt.UTC))
    rec = engine.recurring.add_or_update("hourly", add, "0 * * * *", 1, 2)
    assert rec.next_run_at == dt.datetime(2026, 3, 10, 11, 0, tzinfo=dt.UTC).timestamp()
    assert await engine.drain() == 0
    clock.set(dt.datetime(2026, 3, 10, 11, 0, 1, tzinfo=dt.UTC))
    assert await engine.drain() == 1
    rec = engine.recurring.get("hourly")
    assert rec.next_run_at == dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC).timestamp()
    assert rec.last_job_id is not None
    assert engine.get(rec.last_job_id).recurring_id == "hourly"
    # calling add_or_update again (every app start) keeps the schedule
    engine.recurring.add_or_update("hourly", add, "0 * * * *", 1, 2)
    assert engine.recurring.get("hourly").next_run_at == rec.next_run_at
    # five hours without a server: once -> 1 run, all -> 5 runs, skip -> none
    engine.recurring.add_or_update("all", add, "0 * * * *", 3, 4, misfire="all")
    engine.recurring.add_or_update("skip", add, "0 * * * *", 5, 6, misfire="skip")
    clock.set(dt.datetime(2026, 3, 10, 16, 30, tzinfo=dt.UTC))
    await engine.drain()
    runs = {
        r: engine.monitoring.count_jobs(tag=f"recurring:{r}") for r in ("hourly", "all", "skip")
    }
    assert runs == {"hourly": 2, "all": 5, "skip": 0}
    assert engine.recurring.get("skip").next_run_at == (
        dt.datetime(2026, 3, 10, 17, 0, tzinfo=dt.UTC).timestamp()
    )
    manual = engine.recurring.trigger("skip")
    assert engine.get(manual).state is State.ENQUEUED
    assert engine.recurring.remove("skip") is True
    assert engine.recurring.remove("skip") is False
    with pytest.raises(JobNotFoundError):
        engine.recurring.trigger("skip")
    with pytest.raises(JobArgumentError, match="misfire"):
        engine.recurring.add_or_update("x", add, "* * * * *", 1, 1, misfire="sometimes")


async def test_recurring_across_daylight_saving_time(engine: JobEngine, clock: FakeClock) -> None:
    # Berlin springs forward on 2026-03-29 at 02:00 -> 03:00; 02:30 does not exist that day
    clock.set(dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC))
    engine.recurring.add_or_update("night", add, "30 2 * * *", 1, 1, tz="Europe/Berlin")
    first = engine.recurring.get("night").next_run_at
    assert first == dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC).timestamp()  # 03:00 CEST
    clock.set(dt.datetime(2026, 3, 29, 1, 0, 1, tzinfo=dt.UTC))
    assert await engine.drain() == 1
    second = engine.recurring.get("night").next_run_at
    assert second == dt.datetime(2026, 3, 30, 0, 30, tzinfo=dt.UTC).timestamp()  # 02:30 CEST


async def test_filters_see_runs_and_state_changes(engine: JobEngine) -> None:
    seen: list[tuple[str, object]] = []

    class Spy(JobFilter):
        async def before_perform(self, context):  # type: ignore[no-untyped-def]
            seen.append(("before", context.job_id))

        async def after_perform(self, context, error):  # type: ignore[no-untyped-def]
            seen.append(("after", type(error).__name__ if error else None))

        def on_state_change(self, job_id, state, reason):  # type: ignore[no-untyped-def]
            seen.append(("state", state))

    engine.add_filter(Spy())
    job_id = engine.enqueue(boom, "x")
    await engine.drain()
    assert seen == [("before", job_id), ("after", "RuntimeError"), ("state", State.SCHEDULED)]


async def test_state_changes_feed(engine: JobEngine) -> None:
    got: list[tuple[int, State]] = []

    async def listen() -> None:
        async for change in engine.state_changes(poll_interval=0.01):
            got.append((change.job_id, change.state))
            if change.state is State.SUCCEEDED:
                return

    engine.storage.migrate()  # the schema first: migrating inside the listener blocks the loop
    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)  # the listener is subscribed
    job_id = engine.enqueue(add, 1, 1)
    await engine.drain()
    await asyncio.wait_for(task, 10)
    assert got == [(job_id, State.ENQUEUED), (job_id, State.PROCESSING), (job_id, State.SUCCEEDED)]


@pytest.mark.needs_database
def test_migrations_are_idempotent_and_concurrent(storage_url: str) -> None:
    import threading

    engines = [JobEngine(storage_url) for _ in range(4)]
    errors: list[BaseException] = []

    def migrate(e: JobEngine) -> None:
        try:
            e.storage.migrate()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.close()
    assert errors == []


async def test_dashboard_queries(engine: JobEngine, clock: FakeClock) -> None:
    parent = engine.enqueue(add, 1, 1, tags=["tenant:acme"])
    child = engine.continue_with(parent, sync_echo, "x")
    retrying = engine.enqueue(boom, "again")
    engine.enqueue(fatal)
    assert [j.id for j in engine.monitoring.children(parent)] == [child]
    assert [j.id for j in engine.monitoring.list_jobs(search=str(parent))] == [parent]
    assert [j.id for j in engine.monitoring.list_jobs(search="tenant:acme")] == [parent]
    found = {j.id for j in engine.monitoring.list_jobs(search="targets.sync")}
    assert found == {child}
    assert engine.monitoring.list_jobs(search="100%_") == []
    await engine.drain()
    assert [j.id for j in engine.monitoring.list_jobs(retrying=True)] == [retrying]
    assert engine.monitoring.count_jobs(retrying=True) == 1
    hour = int(clock() // 3600 * 3600)
    stats = engine.monitoring.throughput(clock() - 86400)
    assert (float(hour), State.SUCCEEDED, 2) in stats
    assert (float(hour), State.FAILED, 1) in stats  # the dead-lettered one, not the retry
    daily = engine.monitoring.throughput(clock() - 86400, bucket=86400)
    assert sum(n for _, s, n in daily if s is State.SUCCEEDED) == 2
    with pytest.raises(ValueError, match="multiple"):
        engine.monitoring.throughput(clock(), bucket=60)
    engine.storage.register_server("s1", "h", 1, ["default"], 1, clock())
    engine.enqueue(add, 5, 5)
    claimed = engine.storage.claim("s1", ["default"], 5, clock())
    assert len(claimed) == 1
    assert [j.id for j in engine.monitoring.running_on("s1")] == [c.id for c in claimed]


def test_a_claim_never_starts_a_job_before_it_was_enqueued(
    engine: JobEngine, clock: FakeClock
) -> None:
    # a server reads its clock before its claim transaction; a job enqueued in between
    # must not show a start before its enqueue (a negative wait on the dashboard)
    job_id = engine.enqueue(add, 1, 1)
    engine.storage.register_server("s1", "h", 1, ["default"], 1, clock())
    engine.storage.claim("s1", ["default"], 1, clock() - 5)
    job = engine.get(job_id)
    assert job.started_at == job.enqueued_at
    assert job.history[-1].data["latency_ms"] == 0
