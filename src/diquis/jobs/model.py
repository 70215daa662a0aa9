"""Plain records the engine and its storages pass around (no behaviour, no IO)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .states import LIVE_STATES, BatchState, State


def to_datetime(epoch: float | None) -> dt.datetime | None:
    """An epoch-seconds timestamp as an aware UTC datetime."""
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


@dataclass(frozen=True)
class StateRecord:
    """One entry of a job's state history."""

    state: State
    at: dt.datetime
    reason: str | None
    server_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class LogLine:
    """One line a running job logged."""

    at: dt.datetime
    line: str


@dataclass(frozen=True)
class ProgressUpdate:
    """What a run reported since its last write: progress, message and new log lines."""

    job_id: int
    attempt: int
    percent: float | None
    message: str | None
    lines: tuple[tuple[float, str], ...]


def merge_log(stored: str | None, lines: Sequence[tuple[float, str]], keep: int) -> str:
    """A job's stored log (JSON ``[[at, line], ...]``) with ``lines`` added, the last ``keep``."""
    old: list[Any] = json.loads(stored) if stored else []
    merged = [*old, *([at, line] for at, line in lines)]
    return json.dumps(merged[-keep:])


def parse_log(stored: str | None) -> tuple[LogLine, ...]:
    """The log lines of a stored log."""
    if not stored:
        return ()
    return tuple(
        LogLine(to_datetime(at), line)  # type: ignore[arg-type]
        for at, line in json.loads(stored)
    )


@dataclass(frozen=True)
class Job:
    """A job as stored, with its history when asked for."""

    id: int
    target: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str
    state: State
    reason: str | None
    attempt: int
    retry_count: int
    created_at: dt.datetime
    scheduled_at: dt.datetime | None
    enqueued_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    expire_at: dt.datetime | None
    server_id: str | None
    unique_key: str | None
    parent_id: int | None
    continuation_on: str | None
    recurring_id: str | None
    result: Any
    error: str | None
    tags: tuple[str, ...] = ()
    history: tuple[StateRecord, ...] = ()
    #: what the job last reported: percent (0-100) and message, and its last log lines
    progress: float | None = None
    progress_message: str | None = None
    log: tuple[LogLine, ...] = ()
    batch_id: int | None = None


@dataclass(frozen=True)
class Batch:
    """A group of jobs followed as one: state, counts per job state, progress."""

    id: int
    state: BatchState
    counts: dict[State, int]
    created_at: dt.datetime
    finished_at: dt.datetime | None
    #: jobs waiting for this batch to finish
    continuations: tuple[int, ...] = ()
    #: the batch this one waits for, if it is a continuation itself
    parent_batch_id: int | None = None

    @property
    def total(self) -> int:
        """How many jobs the batch holds."""
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """How many of them have finished (Succeeded, Failed or Deleted)."""
        return sum(n for s, n in self.counts.items() if s not in LIVE_STATES)

    @property
    def progress(self) -> float:
        """Percentage of finished jobs (100 for an empty batch)."""
        return 100.0 if not self.total else round(100.0 * self.done / self.total, 1)


@dataclass(frozen=True)
class NewJob:
    """What a client asks a storage to create."""

    target: str
    args: str
    kwargs: str
    queue: str
    state: State
    reason: str | None = None
    scheduled_at: float | None = None
    tags: tuple[str, ...] = ()
    unique_key: str | None = None
    parent_id: int | None = None
    continuation_on: str | None = None
    recurring_id: str | None = None
    #: at most one job with this key runs at a time
    mutex_key: str | None = None
    #: at most this many jobs of the target run at a time
    limit: int | None = None
    #: at most ``rate_n`` starts per ``rate_period`` seconds among jobs with ``rate_key``
    rate_key: str | None = None
    rate_n: int | None = None
    rate_period: float | None = None
    #: workers take jobs of a queue round-robin across partitions
    partition_key: str | None = None
    #: the batch the job belongs to, and the batch it waits for (a batch continuation)
    batch_id: int | None = None
    parent_batch_id: int | None = None

    @property
    def gated(self) -> bool:
        """Whether claiming this job looks at anything beyond its queue's order."""
        return (
            self.mutex_key is not None
            or self.limit is not None
            or self.rate_key is not None
            or self.partition_key is not None
        )


@dataclass(frozen=True)
class ClaimedJob:
    """A job a server has just claimed (moved to Processing) and must now run."""

    id: int
    target: str
    args: str
    kwargs: str
    queue: str
    attempt: int
    retry_count: int
    enqueued_at: float | None


@dataclass(frozen=True)
class HistoryEntry:
    """A history row to append: state, reason and details."""

    state: State
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def data_json(self) -> str | None:
        """The details as JSON text, or None when there are none."""
        data = self.data
        if not data:
            return None
        if len(data) == 1:
            # a success's only detail, once per job: the same text as json.dumps, faster
            ms = data.get("duration_ms")
            if type(ms) is float and math.isfinite(ms):
                return '{"duration_ms": ' + repr(ms) + "}"
        return json.dumps(data, default=str)


@dataclass(frozen=True)
class Outcome:
    """How a run ended, to be written by a storage in one batch with others."""

    job_id: int
    attempt: int
    history: tuple[HistoryEntry, ...]
    retry_count: int
    scheduled_at: float | None = None
    expire_at: float | None = None
    result: str | None = None
    error: str | None = None
    #: what the run reported last and was not written yet
    progress: ProgressUpdate | None = None

    @property
    def state(self) -> State:
        """The state the job ends in (the last history entry's)."""
        return self.history[-1].state

    @property
    def reason(self) -> str | None:
        """The reason stored with the final state."""
        return self.history[-1].reason


@dataclass(frozen=True)
class ServerInfo:
    """A running job server as seen through storage."""

    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime


@dataclass(frozen=True)
class RecurringJob:
    """A recurring job definition and where it stands."""

    id: str
    target: str
    args: str
    kwargs: str
    cron: str
    tz: str
    queue: str
    misfire: str
    next_run_at: float | None
    last_run_at: float | None = None
    last_job_id: int | None = None
    error: str | None = None
    created_at: float | None = None


@dataclass(frozen=True)
class StateChange:
    """One state transition seen on the cross-process feed."""

    job_id: int
    state: State
