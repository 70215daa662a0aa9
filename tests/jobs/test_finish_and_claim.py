"""The store's round trip for a server that claims ahead: finish, then claim, in one call.

And ``claim(gated_limit=...)``: careful queues (mutexes, limits, partitions, queue limits)
are claimed only for the free slots, plain ones up to the whole limit. On every store.
"""

from __future__ import annotations

import time

import pytest

from diquis.jobs import JobEngine, State
from diquis.jobs.model import ClaimedJob, Outcome
from diquis.jobs.server import outcomes

SERVER = "s1:1:x"


async def work(n: int) -> None:
    """A plain job."""


async def guarded(n: int) -> None:
    """A job under a mutex."""


async def capped(n: int) -> None:
    """A job of a queue with a queue limit."""


@pytest.fixture(autouse=True)
def _registered(engine: JobEngine) -> None:
    engine.job(work)


def succeeded(engine: JobEngine, job: ClaimedJob) -> Outcome:
    return outcomes.succeeded(job, None, time.perf_counter(), engine.now(), 3600)


def test_finish_and_claim_writes_outcomes_then_claims(engine: JobEngine) -> None:
    engine.storage.register_server(SERVER, "h", 1, ["default"], 2, engine.now())
    first = engine.enqueue(work, 1)
    after = engine.continue_with(first, work, 2)
    other = engine.enqueue(work, 3)
    [claimed] = engine.storage.claim(SERVER, ["default"], 1, engine.now())
    assert claimed.id == first
    written, more = engine.storage.finish_and_claim(
        SERVER, [succeeded(engine, claimed)], ["default"], 5, engine.now()
    )
    assert written == 1
    assert engine.get(first).state is State.SUCCEEDED
    # the claim saw the continuation the finish enqueued, in the same round trip
    assert sorted(j.id for j in more) == sorted([other, after])
    assert all(engine.get(j.id).state is State.PROCESSING for j in more)


def test_finish_and_claim_with_no_room_only_finishes(engine: JobEngine) -> None:
    engine.storage.register_server(SERVER, "h", 1, ["default"], 1, engine.now())
    engine.enqueue(work, 1)
    waiting = engine.enqueue(work, 2)
    [claimed] = engine.storage.claim(SERVER, ["default"], 1, engine.now())
    written, more = engine.storage.finish_and_claim(
        SERVER, [succeeded(engine, claimed)], ["default"], 0, engine.now()
    )
    assert (written, more) == (1, [])
    assert engine.get(waiting).state is State.ENQUEUED


def test_finish_and_claim_ignores_runs_no_longer_owned(engine: JobEngine) -> None:
    engine.storage.register_server(SERVER, "h", 1, ["default"], 1, engine.now())
    job_id = engine.enqueue(work, 1)
    [claimed] = engine.storage.claim(SERVER, ["default"], 1, engine.now())
    engine.delete(job_id)
    written, more = engine.storage.finish_and_claim(
        SERVER, [succeeded(engine, claimed)], ["default"], 1, engine.now()
    )
    assert (written, more) == (0, [])
    assert engine.get(job_id).state is State.DELETED


def test_gated_limit_caps_careful_queues_only(engine: JobEngine) -> None:
    engine.job(queue="careful", mutex="m:{n}")(guarded)
    engine.storage.register_server(SERVER, "h", 1, ["careful", "default"], 1, engine.now())
    careful = [engine.enqueue(guarded, n) for n in range(3)]
    plain = [engine.enqueue(work, n) for n in range(3)]
    # one free slot: one careful job (the first queue comes first), plain ones ahead
    claimed = engine.storage.claim(SERVER, ["careful", "default"], 4, engine.now(), 1)
    assert [j.id for j in claimed] == [careful[0], *plain]
    # no free slot: careful jobs wait, plain ones are still claimed ahead
    assert engine.storage.claim(SERVER, ["careful", "default"], 4, engine.now(), 0) == []
    more = engine.storage.claim(SERVER, ["careful"], 4, engine.now(), 0)
    assert more == []
    assert [engine.get(j).state for j in careful[1:]] == [State.ENQUEUED] * 2
    # the default gated limit is the limit itself
    assert [j.id for j in engine.storage.claim(SERVER, ["careful"], 1, engine.now())] == [
        careful[1]
    ]


def test_a_queue_limit_makes_a_queue_careful(engine: JobEngine) -> None:
    engine.job(queue="capped")(capped)
    engine.storage.set_queue_limit("capped", 5)
    jobs = [engine.enqueue(capped, n) for n in range(4)]
    claimed = engine.storage.claim(SERVER, ["capped"], 4, engine.now(), 2)
    assert [j.id for j in claimed] == jobs[:2]


def test_finish_and_claim_takes_a_first_queue_with_gated_jobs_carefully(
    engine: JobEngine,
) -> None:
    engine.job(queue="careful", mutex="m:{n}")(guarded)
    engine.storage.register_server(SERVER, "h", 1, ["careful", "default"], 2, engine.now())
    careful = [engine.enqueue(guarded, n) for n in (1, 1, 2)]
    plain = [engine.enqueue(work, n) for n in range(2)]
    [first] = engine.storage.claim(SERVER, ["careful"], 1, engine.now(), 1)
    assert first.id == careful[0]
    # careful[1] shares careful[0]'s mutex, still held while the finish is not written:
    # the finish comes first, so it is free now; one free slot takes only one careful job
    written, more = engine.storage.finish_and_claim(
        SERVER, [succeeded(engine, first)], ["careful", "default"], 5, engine.now(), 1
    )
    assert written == 1
    assert [j.id for j in more] == [careful[1], *plain]
    assert engine.get(careful[2]).state is State.ENQUEUED


def test_continuations_a_finish_enqueues_count_against_the_gated_limit(
    engine: JobEngine,
) -> None:
    engine.job(queue="careful", mutex="m:{n}")(guarded)
    engine.storage.register_server(SERVER, "h", 1, ["default", "careful"], 2, engine.now())
    parent = engine.enqueue(work, 1)
    after = engine.continue_with(parent, guarded, 1)
    other = engine.enqueue(work, 2)
    [claimed] = engine.storage.claim(SERVER, ["default"], 1, engine.now())
    # one free slot, already taken by the plain job: the careful continuation waits
    _, more = engine.storage.finish_and_claim(
        SERVER, [succeeded(engine, claimed)], ["default", "careful"], 5, engine.now(), 1
    )
    assert [j.id for j in more] == [other]
    assert engine.get(after).state is State.ENQUEUED
    # with two free slots it is claimed in the same transaction
    [again] = more
    _, more = engine.storage.finish_and_claim(
        SERVER, [succeeded(engine, again)], ["default", "careful"], 5, engine.now(), 2
    )
    assert [j.id for j in more] == [after]
