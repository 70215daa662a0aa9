"""The stager reads before it writes: a tick with nothing due takes no write transaction,
and everything that is due — scheduled jobs, recurring jobs, continuations whose parent
has finished — is still staged."""

from __future__ import annotations

from typing import Any

import pytest

from diquis.jobs import JobEngine, State
from diquis.jobs.server.duty import Io
from diquis.jobs.server.stager import Stager

from . import targets
from .conftest import FakeClock

SQL_STORES = pytest.mark.parametrize("storage_url", ["sqlite", "postgres"], indirect=True)


def stager(engine: JobEngine) -> Stager:
    return Stager(engine, Io(), 1.0, lambda: None)


def writes(engine: JobEngine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Note every write the stager could make (its two write transactions)."""
    made: list[str] = []
    storage = engine.storage
    for name in ("enqueue_due", "fire_recurring"):
        real = getattr(storage, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            made.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(storage, name, spy)
    return made


def finish_behind_the_engines_back(engine: JobEngine, job_id: int, state: State) -> None:
    """Set a parent's state without resolving its continuations (what a race between a
    continuation's insert and its parent's finish can leave for the stager)."""
    storage: Any = engine.storage
    with storage.transaction() as conn:
        storage.execute(
            conn, "UPDATE diquis_jobs SET state = ? WHERE id = ?", (state.value, job_id)
        )


@SQL_STORES
def test_an_idle_tick_writes_nothing_and_a_due_one_stages(
    engine: JobEngine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets.register_all(engine)
    made = writes(engine, monkeypatch)
    now = clock()
    assert stager(engine)._stage(now) == (False, None, None)
    job = engine.schedule(targets.add, 1, 2, delay=60)
    staged, next_due, next_recurring = stager(engine)._stage(now)
    assert (staged, next_recurring) == (False, None)
    assert next_due == pytest.approx(now + 60)
    assert made == []  # two idle ticks: not one write transaction
    clock.advance(60)
    assert stager(engine)._stage(clock())[0] is True
    assert engine.get(job).state is State.ENQUEUED
    assert made == ["enqueue_due", "fire_recurring"]


@SQL_STORES
def test_a_due_recurring_job_is_seen_by_the_look(engine: JobEngine, clock: FakeClock) -> None:
    targets.register_all(engine)
    engine.recurring.add_or_update("every-minute", targets.add, "* * * * *", 1, 2)
    due, _, next_recurring = engine.storage.stager_due(clock())
    assert not due and next_recurring is not None and next_recurring > clock()
    assert engine.storage.stager_due(next_recurring)[0] is True
    staged, _, later = stager(engine)._stage(next_recurring)
    assert staged is True and later is not None and later > next_recurring


@SQL_STORES
def test_a_continuation_left_awaiting_is_seen_unless_it_would_keep_waiting(
    engine: JobEngine, clock: FakeClock
) -> None:
    targets.register_all(engine)
    parent = engine.enqueue(targets.add, 1, 2)
    waits_for_success = engine.continue_with(parent, targets.sync_echo, "x")
    assert engine.storage.stager_due(clock())[0] is False  # the parent has not finished
    # a Failed parent: an on="succeeded" continuation keeps waiting, nothing to stage
    finish_behind_the_engines_back(engine, parent, State.FAILED)
    assert engine.storage.stager_due(clock())[0] is False
    finish_behind_the_engines_back(engine, parent, State.SUCCEEDED)
    assert engine.storage.stager_due(clock())[0] is True
    stager(engine)._stage(clock())
    assert engine.get(waits_for_success).state is State.ENQUEUED
    assert engine.storage.stager_due(clock())[0] is False
