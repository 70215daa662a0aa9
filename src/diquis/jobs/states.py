"""Job states and the one table of allowed transitions (h11-style: the whole machine here).

Every state change the engine makes is a named :class:`Move` (claim, succeed, requeue...).
A move lists the states it starts from and the state it leads to, and every pair it allows
must be in :data:`TRANSITIONS` (checked when this module loads). Storages never decide a
rule themselves: the in-memory store calls :func:`transition`, the SQL stores put
:meth:`Move.sql_sources` in their ``WHERE`` clauses, and the one rule written in SQL by hand
(PostgreSQL's continuation ``CASE``) is pinned to :func:`continuation_state` by a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import InvalidStateError


class State(StrEnum):
    """Where a job is in its life, with Hangfire's names."""

    SCHEDULED = "Scheduled"
    ENQUEUED = "Enqueued"
    PROCESSING = "Processing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETED = "Deleted"
    AWAITING = "Awaiting"


#: States a job may be created in (Deleted: a continuation of a deleted job).
INITIAL_STATES = frozenset({State.SCHEDULED, State.ENQUEUED, State.AWAITING, State.DELETED})

#: States in which a job still has work ahead; a unique key is held only in these.
LIVE_STATES = frozenset({State.SCHEDULED, State.ENQUEUED, State.PROCESSING, State.AWAITING})

#: Every state change the engine makes, from -> allowed targets.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.SCHEDULED: frozenset({State.ENQUEUED, State.DELETED}),
    State.AWAITING: frozenset({State.ENQUEUED, State.DELETED}),
    State.ENQUEUED: frozenset({State.PROCESSING, State.DELETED}),
    # Scheduled: a retry; Enqueued: handed back (shutdown) or rescued (dead server)
    State.PROCESSING: frozenset(
        {State.SUCCEEDED, State.FAILED, State.SCHEDULED, State.ENQUEUED, State.DELETED}
    ),
    State.SUCCEEDED: frozenset({State.ENQUEUED, State.DELETED}),
    State.FAILED: frozenset({State.ENQUEUED, State.DELETED}),
    State.DELETED: frozenset({State.ENQUEUED}),
}


def can_transition(source: State, target: State) -> bool:
    """Whether the engine allows ``source`` -> ``target``."""
    return target in TRANSITIONS[source]


@dataclass(frozen=True)
class Move:
    """One kind of state change: the states it may start from and where it leads."""

    name: str
    sources: frozenset[State]
    target: State

    def __post_init__(self) -> None:
        for source in self.sources:
            if not can_transition(source, self.target):
                raise AssertionError(
                    f"move {self.name!r}: {source.value} -> {self.target.value} is not in the table"
                )

    def allows(self, source: State) -> bool:
        """Whether this move may start from ``source``."""
        return source in self.sources

    def sql_match(self, column: str = "state") -> str:
        """``state = 'X'`` (one source: SQLite's partial indexes match only this form), or
        ``state IN (...)``."""
        if len(self.sources) == 1:
            [only] = self.sources
            return f"{column} = '{only.value}'"
        return f"{column} IN ({self.sql_sources()})"

    def sql_sources(self) -> str:
        """The sources as a SQL list of literals, for ``state IN (...)``."""
        return sql_list(self.sources)


def sql_list(states: frozenset[State] | set[State]) -> str:
    """``'A', 'B'``: states as SQL string literals, sorted (stable statement text)."""
    return ", ".join(f"'{s.value}'" for s in sorted(states))


def _into(target: State, *, but: frozenset[State] = frozenset()) -> frozenset[State]:
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets) - but


#: a server takes an Enqueued job
CLAIM = Move("claim", frozenset({State.ENQUEUED}), State.PROCESSING)
#: the state a run is in while a server owns it
PROCESSING = CLAIM.target
#: how a run ends (written by the server that owns the run)
SUCCEED = Move("succeed", frozenset({State.PROCESSING}), State.SUCCEEDED)
FAIL = Move("fail", frozenset({State.PROCESSING}), State.FAILED)
RETRY = Move("retry", frozenset({State.PROCESSING}), State.SCHEDULED)
#: a stopping server hands a run back, or a dead server's run is rescued
HAND_BACK = Move("hand back", frozenset({State.PROCESSING}), State.ENQUEUED)
#: a Scheduled job's time has come
DUE = Move("due", frozenset({State.SCHEDULED}), State.ENQUEUED)
#: a person enqueues a job again now (a running job is not requeued: delete it first)
REQUEUE = Move("requeue", _into(State.ENQUEUED, but=frozenset({State.PROCESSING})), State.ENQUEUED)
#: a person deletes a job (a Processing one is cancelled)
DELETE = Move("delete", _into(State.DELETED), State.DELETED)
#: an Awaiting continuation starts, or is deleted with its parent
START_CONTINUATION = Move("start continuation", frozenset({State.AWAITING}), State.ENQUEUED)
DROP_CONTINUATION = Move("drop continuation", frozenset({State.AWAITING}), State.DELETED)

#: every move, by name
MOVES: dict[str, Move] = {
    m.name: m
    for m in (
        CLAIM,
        SUCCEED,
        FAIL,
        RETRY,
        HAND_BACK,
        DUE,
        REQUEUE,
        DELETE,
        START_CONTINUATION,
        DROP_CONTINUATION,
    )
}

#: the moves that end a run, by the state the run ends in
FINISH_MOVES: dict[State, Move] = {m.target: m for m in (SUCCEED, FAIL, RETRY)}

#: States from which a person may requeue a job ("enqueue now").
REQUEUEABLE = REQUEUE.sources

#: States from which a job may be deleted (a Processing job is cancelled).
DELETABLE = DELETE.sources

#: Parent states that settle a continuation one way or another.
PARENT_DONE = frozenset({State.SUCCEEDED, State.FAILED, State.DELETED})


def transition(move: Move, current: State, *, job: object = None) -> State:
    """The state ``move`` leads to from ``current``; InvalidStateError if it may not start there."""
    if not move.allows(current):
        what = f"job {job}" if job is not None else "the job"
        raise InvalidStateError(
            f"{what} is {current.value}; it cannot become {move.target.value} from there"
        )
    return move.target


def continuation_state(parent: State, on: str) -> State | None:
    """What an Awaiting continuation becomes once its parent is ``parent`` (None: keep waiting)."""
    if parent is State.SUCCEEDED:
        return START_CONTINUATION.target
    if parent is State.DELETED:
        return START_CONTINUATION.target if on == "any" else DROP_CONTINUATION.target
    if parent is State.FAILED and on == "any":
        return START_CONTINUATION.target
    return None


def continuation_move(parent: State, on: str) -> Move | None:
    """The move an Awaiting continuation makes once its parent is ``parent`` (None: wait)."""
    after = continuation_state(parent, on)
    if after is None:
        return None
    return START_CONTINUATION if after is State.ENQUEUED else DROP_CONTINUATION


class BatchState(StrEnum):
    """Where a batch is: Started until every job has finished."""

    STARTED = "Started"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


def batch_state(counts: dict[State, int], cancelled: bool) -> BatchState:
    """A batch's state from its jobs' states (Deleted jobs count as done, not failed)."""
    if cancelled:
        return BatchState.CANCELLED
    if any(counts.get(s, 0) for s in LIVE_STATES):
        return BatchState.STARTED
    if counts.get(State.FAILED, 0):
        return BatchState.FAILED
    return BatchState.SUCCEEDED


def batch_continuation_move(batch: BatchState, on: str) -> Move | None:
    """The move a job Awaiting a batch makes once the batch is ``batch`` (None: wait)."""
    if batch is BatchState.STARTED:
        return None
    if on == "any" or batch is BatchState.SUCCEEDED:
        return START_CONTINUATION
    return DROP_CONTINUATION


__all__ = [
    "CLAIM",
    "DELETABLE",
    "DELETE",
    "DROP_CONTINUATION",
    "DUE",
    "FAIL",
    "FINISH_MOVES",
    "HAND_BACK",
    "INITIAL_STATES",
    "LIVE_STATES",
    "MOVES",
    "PARENT_DONE",
    "PROCESSING",
    "REQUEUE",
    "REQUEUEABLE",
    "RETRY",
    "START_CONTINUATION",
    "SUCCEED",
    "TRANSITIONS",
    "BatchState",
    "Move",
    "State",
    "batch_continuation_move",
    "batch_state",
    "can_transition",
    "continuation_move",
    "continuation_state",
    "sql_list",
    "transition",
]
