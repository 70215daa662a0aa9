"""A real server: pickup, cancellation, retries, graceful stop — with real time, kept short."""

from __future__ import annotations

import asyncio
import time

import pytest

from diquis.jobs import JobEngine, RetryPolicy, Server, State
from tests.support.wait import eventually

from . import targets
from .targets import CALLS, polite_sync, slow_async, stubborn_sync


@pytest.fixture(autouse=True)
def _registered(live_engine: JobEngine) -> None:
    targets.register_all(live_engine)
    CALLS.clear()


def fast_server(engine: JobEngine, **options: object) -> Server:
    settings: dict[str, object] = {
        "heartbeat_interval": 0.1,
        "server_timeout": 1.0,
        "scheduler_interval": 0.2,
    }
    settings.update(options)
    return engine.server(**settings)


def state_of(engine: JobEngine, job_id: int) -> State:
    return engine.get(job_id).state


async def test_a_running_server_picks_up_new_jobs_at_once(live_engine: JobEngine) -> None:
    async with fast_server(live_engine, poll_interval=30.0):
        await asyncio.sleep(0.2)
        started = time.monotonic()
        job_id = live_engine.enqueue(targets.add, 20, 22)
        await eventually(lambda: state_of(live_engine, job_id) is State.SUCCEEDED)
        # the backup poll is 30 s: only a wake-up explains a quick pickup
        assert time.monotonic() - started < 2.0
        assert live_engine.get(job_id).result == 42


async def test_scheduled_retries_and_continuations_run_on_their_own(
    live_engine: JobEngine,
) -> None:
    attempts: list[int] = []

    @live_engine.job(retry=RetryPolicy(attempts=2, delays=[0.1]))
    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("not yet")
        return "third time lucky"

    async with fast_server(live_engine):
        job_id = live_engine.enqueue(flaky)
        after = live_engine.continue_with(job_id, targets.add, 1, 1)
        await eventually(lambda: state_of(live_engine, after) is State.SUCCEEDED)
    job = live_engine.get(job_id)
    assert job.state is State.SUCCEEDED
    assert job.retry_count == 2
    assert [h.state for h in job.history].count(State.FAILED) == 2


async def test_deleting_a_running_async_job_cancels_it(live_engine: JobEngine) -> None:
    async with fast_server(live_engine) as server:
        job_id = live_engine.enqueue(slow_async, 30)
        await eventually(lambda: ("slow_async:start", 30) in CALLS)
        live_engine.delete(job_id)
        await eventually(lambda: not server.running_jobs, timeout=5)
    assert state_of(live_engine, job_id) is State.DELETED
    assert ("slow_async:end", 30) not in CALLS


async def test_a_sync_job_sees_its_cancellation_token(live_engine: JobEngine) -> None:
    async with fast_server(live_engine) as server:
        job_id = live_engine.enqueue(polite_sync, 30)
        await eventually(lambda: ("polite_sync:start", job_id) in CALLS)
        started = time.monotonic()
        live_engine.delete(job_id)
        await eventually(lambda: not server.running_jobs, timeout=5)
        assert time.monotonic() - started < 3
    assert state_of(live_engine, job_id) is State.DELETED


async def test_a_sync_job_that_ignores_cancellation_has_its_result_discarded(
    live_engine: JobEngine,
) -> None:
    async with fast_server(live_engine):
        job_id = live_engine.enqueue(stubborn_sync, 0.8)
        await eventually(lambda: ("stubborn_sync:start", job_id) in CALLS)
        live_engine.delete(job_id)
        await eventually(lambda: ("stubborn_sync:end", 0.8) in CALLS)
        await asyncio.sleep(0.3)
    job = live_engine.get(job_id)
    assert job.state is State.DELETED
    assert job.result is None
    assert job.history[-1].state is State.DELETED


async def test_graceful_stop_finishes_short_jobs_and_hands_back_the_rest(
    live_engine: JobEngine,
) -> None:
    server = fast_server(live_engine, concurrency=4)
    await server.start()
    short = live_engine.enqueue(slow_async, 0.3)
    long = live_engine.enqueue(slow_async, 30)
    await eventually(lambda: len(server.running_jobs) == 2)
    await server.stop(timeout=1.0)
    assert state_of(live_engine, short) is State.SUCCEEDED
    job = live_engine.get(long)
    assert job.state is State.ENQUEUED
    assert "shut down" in (job.reason or "")
    assert live_engine.monitoring.list_servers() == []


async def test_many_jobs_through_several_servers_run_exactly_once(
    live_engine: JobEngine,
) -> None:
    ids = [live_engine.enqueue(targets.sync_echo, i) for i in range(200)]
    async with fast_server(live_engine, concurrency=8), fast_server(live_engine, concurrency=8):
        await eventually(
            lambda: live_engine.monitoring.count_jobs(state=State.SUCCEEDED) == len(ids), 30
        )
    echoed = sorted(v for name, v in CALLS if name == "sync_echo")
    assert echoed == list(range(200))


def test_a_worker_runs_on_uvloop_when_it_is_installed() -> None:
    import uvloop  # the app extra brings it (through uvicorn[standard])

    from diquis.jobs.server.server import _loop_factory

    assert _loop_factory() is uvloop.new_event_loop
