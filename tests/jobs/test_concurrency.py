"""Mutexes, concurrency limits, rate limits and fair partitions: on every store."""

from __future__ import annotations

import dataclasses

import pytest

from diquis.jobs import ConfigurationError, JobEngine, State
from diquis.jobs.concurrency import Concurrency, parse_rate

from .conftest import FakeClock


async def provision(tenant_id: str, step: int = 0) -> None:
    """A job keyed by tenant."""


async def work(n: int) -> None:
    """A plain job."""


def claim(engine: JobEngine, n: int = 10, queues: tuple[str, ...] = ("default",)) -> list[int]:
    return [j.id for j in engine.storage.claim("s1:1:x", list(queues), n, engine.now())]


def finish(engine: JobEngine, job_id: int) -> None:
    job = engine.get(job_id)
    engine.storage.release("s1:1:x", [(job_id, job.attempt)], engine.now(), "test")
    engine.delete(job_id)


def test_templates_are_checked_at_registration(engine: JobEngine) -> None:
    with pytest.raises(ConfigurationError, match="tenant"):
        engine.job(mutex="t:{tenant}")(provision)
    with pytest.raises(ConfigurationError, match="name the argument"):
        engine.job(partition="t:{0}")(work)
    with pytest.raises(ConfigurationError, match="rate_limit"):
        engine.job(rate_limit="ten a minute")(work)
    with pytest.raises(ConfigurationError, match="positive"):
        engine.job(limit=0)(work)
    assert parse_rate("10/minute") == (10, 60.0)
    assert parse_rate("100/5 seconds") == (100, 5.0)


def test_a_mutex_lets_one_job_per_key_run_the_others_wait_enqueued(engine: JobEngine) -> None:
    engine.job(mutex="tenant:{tenant_id}")(provision)
    a1 = engine.enqueue(provision, "a")
    a2 = engine.enqueue(provision, "a", step=1)
    b1 = engine.enqueue(provision, tenant_id="b")
    assert engine.get(a1).state is State.ENQUEUED
    assert sorted(claim(engine)) == [a1, b1]
    assert claim(engine) == []  # a2 waits: a1 holds tenant:a
    assert engine.get(a2).state is State.ENQUEUED
    finish(engine, a1)
    assert claim(engine) == [a2]


def test_a_target_limit_caps_running_jobs(engine: JobEngine) -> None:
    engine.job(limit=2)(work)
    ids = [engine.enqueue(work, i) for i in range(5)]
    assert claim(engine) == ids[:2]
    assert claim(engine) == []
    finish(engine, ids[0])
    assert claim(engine) == [ids[2]]


def test_a_queue_limit_caps_running_jobs_of_the_queue(engine: JobEngine) -> None:
    engine.job(work)
    engine.queue_limit("default", 3)
    ids = [engine.enqueue(work, i) for i in range(5)]
    assert claim(engine) == ids[:3]
    assert claim(engine) == []
    finish(engine, ids[1])
    assert claim(engine) == [ids[3]]
    engine.queue_limit("default", None)
    assert claim(engine) == [ids[4]]


def test_a_rate_limit_counts_starts_per_key(engine: JobEngine, clock: FakeClock) -> None:
    engine.job(rate_limit="2/minute", rate_key="tenant:{tenant_id}")(provision)
    a = [engine.enqueue(provision, "a", i) for i in range(3)]
    b = engine.enqueue(provision, "b")
    assert claim(engine) == [*a[:2], b]
    assert claim(engine) == []
    clock.advance(61)
    assert claim(engine) == [a[2]]


def test_a_dead_servers_mutex_is_freed(engine: JobEngine, clock: FakeClock) -> None:
    engine.job(mutex="tenant:{tenant_id}")(provision)
    engine.storage.register_server("s1:1:x", "h", 1, ["default"], 1, engine.now())
    first = engine.enqueue(provision, "a")
    second = engine.enqueue(provision, "a")
    assert claim(engine) == [first]
    clock.advance(60)
    assert engine.storage.rescue(engine.now(), 30) == [first]
    assert engine.get(first).state is State.ENQUEUED
    assert claim(engine) == [first]  # in queue order again, still one at a time
    assert engine.get(second).state is State.ENQUEUED


def test_partitions_share_a_queue_round_robin(engine: JobEngine) -> None:
    engine.job(partition="tenant:{tenant_id}")(provision)
    for i in range(10_000):  # tenant A queues first...
        engine.enqueue(provision, "a", i)
    lone = engine.enqueue(provision, "b")  # ...then tenant B's single job
    first, second = claim(engine, 10), claim(engine, 10)
    assert lone in first + second, "B must start within the first 2 claim batches"
    assert lone in first
    assert len(first) == len(second) == 10


def test_ungated_jobs_are_not_starved_by_partitions(engine: JobEngine) -> None:
    engine.job(partition="tenant:{tenant_id}")(provision)
    engine.job(work)
    for i in range(20):
        engine.enqueue(provision, "a", i)
    plain = engine.enqueue(work, 1)
    assert plain in claim(engine, 4)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Concurrency)])
def test_any_rule_makes_a_target_gated(field: str) -> None:
    # Concurrency.empty names every field: one added later must be named there too
    assert Concurrency().empty
    assert not Concurrency(**{field: 1}).empty
