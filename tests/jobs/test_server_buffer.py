"""Claiming ahead of free slots: the server's local buffer of claimed, not started jobs.

Each test holds the server's only slots with jobs waiting on a gate, so the jobs claimed
after them wait in the buffer for as long as the test needs; nothing depends on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from diquis.jobs import JobEngine, Server, State
from tests.support.wait import eventually

Gate = asyncio.Event


@pytest.fixture
def gate() -> Iterator[Gate]:
    yield asyncio.Event()


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture(autouse=True)
def _targets(live_engine: JobEngine, gate: Gate, ran: list[str]) -> None:
    @live_engine.job(name="blocker")
    async def blocker() -> None:
        ran.append("blocker")
        await gate.wait()

    @live_engine.job(name="mark")
    async def mark(label: str) -> None:
        ran.append(label)


def server(engine: JobEngine, **options: object) -> Server:
    settings: dict[str, object] = {
        "heartbeat_interval": 0.1,
        "server_timeout": 1.0,
        "scheduler_interval": 0.2,
        "concurrency": 1,
    }
    settings.update(options)
    return engine.server(**settings)


def state_of(engine: JobEngine, job_id: int) -> State:
    return engine.get(job_id).state


async def hold_the_slot(engine: JobEngine, srv: Server, queue: str = "default") -> int:
    """Enqueue a blocker and wait until it runs (the server's one slot is taken)."""
    job_id = engine.enqueue("blocker", queue=queue)
    await eventually(lambda: srv.running_jobs == [job_id])
    return job_id


async def test_jobs_wait_in_the_buffer_while_the_slots_are_busy(
    live_engine: JobEngine, gate: Gate, ran: list[str]
) -> None:
    async with server(live_engine, prefetch=2) as srv:
        blocker = await hold_the_slot(live_engine, srv)
        waiting = [live_engine.enqueue("mark", f"m{i}") for i in range(3)]
        await eventually(lambda: srv.executor.buffered == 2)
        # buffered jobs are this server's Processing runs, for the heartbeat too
        assert [state_of(live_engine, j) for j in waiting[:2]] == [State.PROCESSING] * 2
        assert state_of(live_engine, waiting[2]) is State.ENQUEUED
        assert {j for j, _ in srv.executor.runs()} == {blocker, *waiting[:2]}
        assert srv.running_jobs == [blocker]
        gate.set()
        await eventually(lambda: all(state_of(live_engine, j) is State.SUCCEEDED for j in waiting))
    assert ran == ["blocker", "m0", "m1", "m2"]


async def test_a_deleted_buffered_job_is_dropped_and_never_runs(
    live_engine: JobEngine, gate: Gate, ran: list[str]
) -> None:
    async with server(live_engine) as srv:
        blocker = await hold_the_slot(live_engine, srv)
        victim = live_engine.enqueue("mark", "victim")
        await eventually(lambda: srv.executor.buffered == 1)
        live_engine.delete(victim)
        # the heartbeat reports the run as lost: it leaves the buffer without starting
        await eventually(lambda: srv.executor.buffered == 0)
        after = live_engine.enqueue("mark", "after")
        gate.set()
        await eventually(lambda: state_of(live_engine, after) is State.SUCCEEDED)
    assert state_of(live_engine, blocker) is State.SUCCEEDED
    assert state_of(live_engine, victim) is State.DELETED
    assert "victim" not in ran


async def test_cancelling_a_buffered_run_drops_it(
    live_engine: JobEngine, gate: Gate, ran: list[str]
) -> None:
    async with server(live_engine) as srv:
        await hold_the_slot(live_engine, srv)
        victim = live_engine.enqueue("mark", "victim")
        await eventually(lambda: srv.executor.buffered == 1)
        [run] = [r for r in srv.executor.runs() if r[0] == victim]
        srv.executor.cancel([run], "test")
        assert srv.executor.buffered == 0
        assert run not in srv.executor.runs()
        gate.set()
        await asyncio.sleep(0.2)
    assert "victim" not in ran


async def test_a_graceful_stop_hands_buffered_jobs_back_before_waiting_for_runs(
    live_engine: JobEngine, gate: Gate, ran: list[str]
) -> None:
    srv = server(live_engine, prefetch=3)
    await srv.start()
    blocker = await hold_the_slot(live_engine, srv)
    waiting = [live_engine.enqueue("mark", f"m{i}") for i in range(3)]
    await eventually(lambda: srv.executor.buffered == 3)
    stopping = asyncio.create_task(srv.stop(timeout=60.0))
    # handed back while the running job still holds up the stop
    await eventually(lambda: all(state_of(live_engine, j) is State.ENQUEUED for j in waiting))
    assert not stopping.done()
    assert state_of(live_engine, blocker) is State.PROCESSING
    gate.set()
    await stopping
    assert state_of(live_engine, blocker) is State.SUCCEEDED
    for job_id in waiting:
        job = live_engine.get(job_id)
        assert job.state is State.ENQUEUED
        assert "before the job started" in (job.reason or "")
    assert ran == ["blocker"]
    # and another server runs them
    async with server(live_engine, concurrency=3):
        await eventually(lambda: all(state_of(live_engine, j) is State.SUCCEEDED for j in waiting))


async def test_the_buffer_starts_higher_priority_queues_first(
    live_engine: JobEngine, gate: Gate, ran: list[str]
) -> None:
    async with server(live_engine, queues=["high", "low"], prefetch=3) as srv:
        await hold_the_slot(live_engine, srv, queue="low")
        low = [live_engine.enqueue("mark", f"low{i}", queue="low") for i in range(2)]
        await eventually(lambda: srv.executor.buffered == 2)
        high = live_engine.enqueue("mark", "high", queue="high")
        await eventually(lambda: srv.executor.buffered == 3)
        gate.set()
        await eventually(
            lambda: all(state_of(live_engine, j) is State.SUCCEEDED for j in [*low, high])
        )
    assert ran == ["blocker", "high", "low0", "low1"]


async def test_prefetch_zero_claims_only_for_free_slots(
    live_engine: JobEngine, gate: Gate, ran: list[str]
) -> None:
    async with server(live_engine, prefetch=0) as srv:
        await hold_the_slot(live_engine, srv)
        waiting = live_engine.enqueue("mark", "m")
        await asyncio.sleep(0.3)
        assert srv.executor.buffered == 0
        assert state_of(live_engine, waiting) is State.ENQUEUED
        gate.set()
        await eventually(lambda: state_of(live_engine, waiting) is State.SUCCEEDED)


@pytest.mark.parametrize("rule", ["mutex", "limit", "queue_limit"])
async def test_careful_jobs_are_never_claimed_ahead(
    live_engine: JobEngine, rule: str, ran: list[str]
) -> None:
    """Jobs under a mutex, a limit or a queue limit are claimed only for free slots.

    Each run records how many of them run at once and how many this server holds
    claimed but not started: the rule is kept exactly and none waits in the buffer.
    """
    running: list[int] = []
    seen: list[tuple[int, int]] = []
    srv: Server | None = None

    async def body(i: int) -> None:
        assert srv is not None
        running.append(i)
        seen.append((len(running), srv.executor.buffered))
        await asyncio.sleep(0.02)
        running.remove(i)

    queue = "careful"
    if rule == "mutex":
        live_engine.job(name="careful", queue=queue, mutex="one")(body)
    elif rule == "limit":
        live_engine.job(name="careful", queue=queue, limit=3)(body)
    else:
        live_engine.job(name="careful", queue=queue)(body)
        live_engine.storage.set_queue_limit(queue, 3)
    cap = 1 if rule == "mutex" else 3
    jobs = [live_engine.enqueue("careful", i) for i in range(8)]
    # the rules would let 3 be claimed; 2 slots: a third would wait in the buffer
    srv = server(live_engine, queues=[queue], concurrency=2, prefetch=4)
    async with srv:
        await eventually(lambda: all(state_of(live_engine, j) is State.SUCCEEDED for j in jobs))
    assert len(seen) == 8
    assert max(n for n, _ in seen) <= min(cap, 2)
    assert all(buffered == 0 for _, buffered in seen)


async def test_careful_queues_wait_for_slots_but_plain_ones_are_claimed_ahead(
    live_engine: JobEngine, gate: Gate, ran: list[str]
) -> None:
    @live_engine.job(name="careful", queue="careful", mutex="m")
    async def careful(label: str) -> None:
        ran.append(label)

    async with server(live_engine, queues=["careful", "default"], prefetch=2) as srv:
        await hold_the_slot(live_engine, srv)
        guarded = live_engine.enqueue("careful", "careful")
        plain = live_engine.enqueue("mark", "plain")
        await eventually(lambda: srv.executor.buffered == 1)
        await asyncio.sleep(0.2)
        # the plain job waits in the buffer; the careful one is not claimed for it
        assert state_of(live_engine, guarded) is State.ENQUEUED
        assert state_of(live_engine, plain) is State.PROCESSING
        gate.set()
        await eventually(
            lambda: all(state_of(live_engine, j) is State.SUCCEEDED for j in [guarded, plain])
        )


async def test_drain_runs_more_jobs_than_slots_inline(
    live_engine: JobEngine, ran: list[str]
) -> None:
    jobs = [live_engine.enqueue("mark", f"m{i}") for i in range(7)]
    srv = server(live_engine, concurrency=2)
    assert await srv.drain() == 7
    assert all(state_of(live_engine, j) is State.SUCCEEDED for j in jobs)
    assert sorted(ran) == sorted(f"m{i}" for i in range(7))
