"""The state machine: one table, named moves checked against it, and the SQL pinned to it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from diquis.jobs import InvalidStateError, JobEngine, State
from diquis.jobs import states as st
from diquis.jobs.storage import statements
from diquis.jobs.storage.sql import SqlStorage

from . import targets

PAIRS = list(itertools.product(State, State))


def test_every_move_stays_inside_the_table() -> None:
    for move in st.MOVES.values():
        for source in State:
            assert move.allows(source) == (source in move.sources)
            if move.allows(source):
                assert st.can_transition(source, move.target), (move.name, source)


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_transition_checks_every_pair(source: State, target: State) -> None:
    moves = [m for m in st.MOVES.values() if m.target is target]
    for move in moves:
        if move.allows(source):
            assert st.transition(move, source) is target
        else:
            with pytest.raises(InvalidStateError, match=source.value):
                st.transition(move, source, job=7)
    # a pair no move makes is not in the table, or is made by a move from another source set
    if not any(m.allows(source) for m in moves):
        assert not st.can_transition(source, target) or source in (
            State.PROCESSING,  # Processing -> Enqueued is the engine's hand-back, not requeue
        )


def test_a_move_outside_the_table_is_refused_at_definition() -> None:
    with pytest.raises(AssertionError, match="not in the table"):
        st.Move("resurrect", frozenset({State.SUCCEEDED}), State.PROCESSING)


def test_hand_rules_follow_from_the_table() -> None:
    assert {
        State.SCHEDULED,
        State.AWAITING,
        State.SUCCEEDED,
        State.FAILED,
        State.DELETED,
    } == st.REQUEUEABLE
    assert {
        State.SCHEDULED,
        State.AWAITING,
        State.ENQUEUED,
        State.PROCESSING,
        State.SUCCEEDED,
        State.FAILED,
    } == st.DELETABLE
    assert st.LIVE_STATES.isdisjoint(st.PARENT_DONE)


@pytest.mark.parametrize("on", ["succeeded", "any"])
@pytest.mark.parametrize("parent", list(State))
def test_continuation_rule(parent: State, on: str) -> None:
    after = st.continuation_state(parent, on)
    move = st.continuation_move(parent, on)
    if parent not in st.PARENT_DONE:
        assert after is None and move is None
    elif parent is State.FAILED and on == "succeeded":
        assert after is None
    else:
        assert move is not None and move.target is after
        assert move.allows(State.AWAITING)


def test_the_shared_sql_uses_the_moves() -> None:
    assert f"{st.SUCCEED.sql_match()}" in statements.FINISH
    assert f"{st.DUE.sql_match()}" in statements.DUE_JOBS
    assert f"{st.HAND_BACK.sql_match()}" in statements.ORPHANS
    assert f"{st.START_CONTINUATION.sql_match('c.state')}" in (statements.SETTLED_CONTINUATIONS)
    for state in st.LIVE_STATES:
        assert f"'{state.value}'" in statements.LIVE_WITH_KEY


@pytest.fixture(params=["sqlite", "postgres"])
def sql_engine(request: pytest.FixtureRequest, tmp_path: Path) -> JobEngine:
    url = (
        f"sqlite:///{tmp_path}/jobs.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = JobEngine(url)
    targets.register_all(engine)
    request.addfinalizer(engine.close)
    return engine


@pytest.mark.parametrize("on", ["succeeded", "any"])
def test_creating_a_continuation_follows_the_rule_on_every_parent_state(
    sql_engine: JobEngine, on: str
) -> None:
    # PostgreSQL decides this in its insert statement's CASE; SQLite in Python: both must
    # agree with states.continuation_state for every state the parent can be in
    storage = sql_engine.storage
    assert isinstance(storage, SqlStorage)
    for parent_state in State:
        parent = sql_engine.enqueue(targets.add, 1, 1)
        with storage.transaction() as conn:
            storage.execute(
                conn, "UPDATE diquis_jobs SET state = ? WHERE id = ?", (parent_state.value, parent)
            )
        child = sql_engine.continue_with(parent, targets.add, 2, 2, on=on)
        expected = st.continuation_state(parent_state, on) or State.AWAITING
        assert sql_engine.get(child).state is expected, (parent_state, on)
