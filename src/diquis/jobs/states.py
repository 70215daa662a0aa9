"""Job states and the one table of allowed transitions (h11-style: the whole machine here)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a job is in its life, with Hangfire's names."""

    SCHEDULED = "Scheduled"
    ENQUEUED = "Enqueued"
    PROCESSING = "Processing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETED = "Deleted"
    AWAITING = "Awaiting"


#: States in which a job still has work ahead; a unique key is held only in these.
LIVE_STATES = frozenset({State.SCHEDULED, State.ENQUEUED, State.PROCESSING, State.AWAITING})

#: States a job stays in until a person acts (Failed is the dead-letter list).
FINISHED_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.DELETED})

#: Every state change the engine makes, from -> allowed targets.
TRANSITIONS: dict[State, frozenset[State]] = {
    # created as Scheduled / Enqueued / Awaiting (or Deleted: continuation of a deleted job)
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

#: States from which a person may requeue a job ("enqueue now").
REQUEUEABLE = frozenset(s for s, targets in TRANSITIONS.items() if State.ENQUEUED in targets) - {
    State.PROCESSING
}

#: States from which a job may be deleted (a Processing job is cancelled).
DELETABLE = frozenset(s for s, targets in TRANSITIONS.items() if State.DELETED in targets)


def can_transition(source: State, target: State) -> bool:
    """Whether the engine allows ``source`` -> ``target``."""
    return target in TRANSITIONS[source]
