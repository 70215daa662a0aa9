"""Jobs in memory: test your jobs without a database.

>>> from diquis.jobs import JobEngine
>>> from diquis.jobs.testing import MemoryStorage
>>> jobs = JobEngine(MemoryStorage())        # or JobEngine("memory://")
>>> # register targets, enqueue, then: await jobs.drain()

:class:`MemoryStorage` passes the same contract suite as SQLite and PostgreSQL, except
what needs a real database: ``connection=`` enqueues (there is no caller's transaction)
and the cross-process feed (one process only). Every state change goes through
:func:`diquis.jobs.states.transition`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .concurrency import Candidate, Running, pick, round_robin
from .context import LOG_LINES
from .errors import ConfigurationError, DuplicateJobError, InvalidStateError, JobNotFoundError
from .model import (
    Batch,
    ClaimedJob,
    Job,
    NewJob,
    Outcome,
    ProgressUpdate,
    RecurringJob,
    ServerInfo,
    StateChange,
    StateRecord,
    merge_log,
    parse_log,
    to_datetime,
)
from .monitoring import (
    STATS_BUCKET,
    MonitoringApi,
    Throughput,
    check_bucket,
    stats_bucket,
    sum_throughput,
)
from .serialization import loads_args, loads_value
from .states import (
    CLAIM,
    DELETE,
    DUE,
    FINISH_MOVES,
    HAND_BACK,
    INITIAL_STATES,
    LIVE_STATES,
    PARENT_DONE,
    PROCESSING,
    BatchState,
    Move,
    State,
    batch_continuation_move,
    batch_state,
    continuation_move,
    continuation_state,
    transition,
)
from .storage.connector import Waker
from .storage.store import RecurringPlan, Storage

STATS_KEEP = 8 * 86400


@dataclass
class _Row:
    id: int
    target: str
    args: str
    kwargs: str
    queue: str
    state: State
    reason: str | None
    created_at: float
    scheduled_at: float | None = None
    enqueued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    expire_at: float | None = None
    attempt: int = 0
    retry_count: int = 0
    server_id: str | None = None
    unique_key: str | None = None
    parent_id: int | None = None
    continuation_on: str | None = None
    recurring_id: str | None = None
    result: str | None = None
    error: str | None = None
    mutex_key: str | None = None
    limit: int | None = None
    rate_key: str | None = None
    rate_n: int | None = None
    rate_period: float | None = None
    partition_key: str | None = None
    batch_id: int | None = None
    parent_batch_id: int | None = None
    progress: float | None = None
    progress_message: str | None = None
    log: str | None = None
    tags: list[str] = field(default_factory=list)
    history: list[StateRecord] = field(default_factory=list)

    def to_job(self, full: bool) -> Job:
        args, kwargs = loads_args(self.args, self.kwargs)
        return Job(
            id=self.id,
            target=self.target,
            args=args,
            kwargs=kwargs,
            queue=self.queue,
            state=self.state,
            reason=self.reason,
            attempt=self.attempt,
            retry_count=self.retry_count,
            created_at=to_datetime(self.created_at),  # type: ignore[arg-type]
            scheduled_at=to_datetime(self.scheduled_at),
            enqueued_at=to_datetime(self.enqueued_at),
            started_at=to_datetime(self.started_at),
            finished_at=to_datetime(self.finished_at),
            expire_at=to_datetime(self.expire_at),
            server_id=self.server_id,
            unique_key=self.unique_key,
            parent_id=self.parent_id,
            continuation_on=self.continuation_on,
            recurring_id=self.recurring_id,
            result=loads_value(self.result),
            error=self.error,
            progress=self.progress,
            progress_message=self.progress_message,
            log=parse_log(self.log),
            batch_id=self.batch_id,
            tags=tuple(sorted(self.tags)),
            history=tuple(self.history) if full else (),
        )


def _id(row: _Row) -> int:
    return row.id


def _gated(row: _Row) -> bool:
    return (
        row.mutex_key is not None
        or row.limit is not None
        or row.rate_key is not None
        or row.partition_key is not None
    )


def _candidate(row: _Row) -> Candidate:
    return Candidate(
        row.id,
        row.target,
        row.mutex_key,
        row.limit,
        row.rate_key,
        row.rate_n,
        row.rate_period,
        row.partition_key,
    )


@dataclass
class _BatchRow:
    id: int
    created_at: float
    parent_batch_id: int | None = None
    on: str | None = None
    finished_at: float | None = None
    cancelled_at: float | None = None


@dataclass
class _Server:
    info: ServerInfo
    heartbeat: float


class _Tables:
    """The in-memory "database": every access holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.jobs: dict[int, _Row] = {}
        self.next_id = 1
        self.servers: dict[str, _Server] = {}
        self.recurring: dict[str, RecurringJob] = {}
        self.stats: dict[tuple[int, State, str], int] = {}
        self.queue_limits: dict[str, int] = {}
        self.batches: dict[int, _BatchRow] = {}
        self.next_batch_id = 1
        self.changes: list[StateChange] = []
        self.version = 0

    def batch_counts(self, batch_id: int) -> dict[State, int]:
        """How many jobs of a batch are in each state."""
        counts: dict[State, int] = {}
        for r in self.jobs.values():
            if r.batch_id == batch_id:
                counts[r.state] = counts.get(r.state, 0) + 1
        return counts

    def batch(self, b: _BatchRow) -> Batch:
        """The record of a batch."""
        counts = self.batch_counts(b.id)
        return Batch(
            id=b.id,
            state=batch_state(counts, b.cancelled_at is not None),
            counts=counts,
            created_at=to_datetime(b.created_at),  # type: ignore[arg-type]
            finished_at=to_datetime(b.cancelled_at or b.finished_at),
            continuations=tuple(
                sorted(r.id for r in self.jobs.values() if r.parent_batch_id == b.id)
            ),
            parent_batch_id=b.parent_batch_id,
        )


class MemoryMonitoring(MonitoringApi):
    """The monitoring API over the in-memory tables."""

    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def get_job(self, job_id: int) -> Job | None:
        with self._t.lock:
            row = self._t.jobs.get(job_id)
            return None if row is None else row.to_job(full=True)

    def _matching(
        self,
        state: State | None,
        queue: str | None,
        tag: str | None,
        target: str | None,
        search: str | None,
        retrying: bool,
        since: float | None = None,
    ) -> list[_Row]:
        term = search.strip() if search else ""
        out = []
        for row in self._t.jobs.values():
            if state is not None and row.state is not State(state):
                continue
            if queue is not None and row.queue != queue:
                continue
            if target is not None and row.target != target:
                continue
            if tag is not None and tag not in row.tags:
                continue
            if since is not None and row.created_at < since:
                continue
            if retrying and not (row.state is State.SCHEDULED and row.retry_count > 0):
                continue
            if term and not (
                term in row.target
                or any(term in t for t in row.tags)
                or (term.isdigit() and len(term) < 19 and int(term) == row.id)
            ):
                continue
            out.append(row)
        return out

    def list_jobs(
        self,
        *,
        state: State | None = None,
        queue: str | None = None,
        tag: str | None = None,
        target: str | None = None,
        search: str | None = None,
        retrying: bool = False,
        limit: int = 50,
        offset: int = 0,
        since: float | None = None,
    ) -> list[Job]:
        with self._t.lock:
            rows = self._matching(state, queue, tag, target, search, retrying, since)
            rows.sort(key=lambda r: -r.id)
            return [r.to_job(full=False) for r in rows[offset : offset + limit]]

    def count_jobs(
        self,
        *,
        state: State | None = None,
        queue: str | None = None,
        tag: str | None = None,
        target: str | None = None,
        search: str | None = None,
        retrying: bool = False,
        since: float | None = None,
    ) -> int:
        with self._t.lock:
            return len(self._matching(state, queue, tag, target, search, retrying, since))

    def state_counts(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        with self._t.lock:
            for row in self._t.jobs.values():
                counts[row.state] += 1
        return counts

    def get_batch(self, batch_id: int) -> Batch | None:
        with self._t.lock:
            b = self._t.batches.get(batch_id)
            return None if b is None else self._t.batch(b)

    def list_batches(self, limit: int = 50, offset: int = 0) -> list[Batch]:
        with self._t.lock:
            chosen = sorted(self._t.batches, reverse=True)[offset : offset + limit]
            return [self._t.batch(self._t.batches[i]) for i in chosen]

    def count_batches(self) -> int:
        with self._t.lock:
            return len(self._t.batches)

    def batch_jobs(self, batch_id: int, limit: int = 50, offset: int = 0) -> list[Job]:
        with self._t.lock:
            rows = sorted((r for r in self._t.jobs.values() if r.batch_id == batch_id), key=_id)[
                offset : offset + limit
            ]
            return [r.to_job(full=False) for r in rows]

    def children(self, job_id: int) -> list[Job]:
        with self._t.lock:
            rows = sorted(
                (r for r in self._t.jobs.values() if r.parent_id == job_id), key=lambda r: r.id
            )
            return [r.to_job(full=False) for r in rows]

    def running_on(self, server_id: str) -> list[Job]:
        with self._t.lock:
            rows = sorted(
                (
                    r
                    for r in self._t.jobs.values()
                    if r.state is State.PROCESSING and r.server_id == server_id
                ),
                key=lambda r: r.id,
            )
            return [r.to_job(full=False) for r in rows]

    def list_servers(self) -> list[ServerInfo]:
        with self._t.lock:
            servers = sorted(self._t.servers.values(), key=lambda s: s.info.started_at)
            return [
                ServerInfo(
                    id=s.info.id,
                    hostname=s.info.hostname,
                    pid=s.info.pid,
                    queues=s.info.queues,
                    concurrency=s.info.concurrency,
                    started_at=s.info.started_at,
                    heartbeat_at=to_datetime(s.heartbeat),  # type: ignore[arg-type]
                )
                for s in servers
            ]

    def list_recurring(self) -> list[RecurringJob]:
        with self._t.lock:
            return [self._t.recurring[k] for k in sorted(self._t.recurring)]

    def throughput(self, since: float, bucket: int = STATS_BUCKET) -> list[Throughput]:
        check_bucket(bucket)
        first = stats_bucket(since)
        with self._t.lock:
            rows = [(float(b), s, n) for (b, s, _), n in self._t.stats.items() if b >= first]
        return sum_throughput(rows, bucket)


class MemoryStorage(Storage):
    """Jobs in this process's memory (tests, examples); one contract with the SQL stores."""

    name = "memory"

    def __init__(self) -> None:
        self._t = _Tables()
        self._monitoring = MemoryMonitoring(self._t)

    @property
    def monitoring(self) -> MonitoringApi:
        return self._monitoring

    def migrate(self) -> None:
        """Nothing to create."""

    def close(self) -> None:
        """Nothing to release (the jobs stay until the object goes)."""

    def driver_connection(self, connection: Any) -> Any:
        raise ConfigurationError(
            "connection= needs a database storage (SQLite or PostgreSQL); "
            "the in-memory storage has no transactions to join"
        )

    # -- helpers (hold the lock) --------------------------------------------------------

    def _commit(self) -> None:
        self._t.version += 1

    def _record(
        self,
        row: _Row,
        state: State,
        now: float,
        reason: str | None,
        server_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        row.history.append(
            StateRecord(state, to_datetime(now), reason, server_id, data or {})  # type: ignore[arg-type]
        )
        self._t.changes.append(StateChange(row.id, state))

    def _live_with_key(self, key: str, but: int | None = None) -> int | None:
        for row in self._t.jobs.values():
            if row.unique_key == key and row.state in LIVE_STATES and row.id != but:
                return row.id
        return None

    def _move(
        self,
        row: _Row,
        move: Move,
        now: float,
        reason: str | None,
        *,
        expire_at: float | None = None,
        fresh_start: bool = True,
    ) -> None:
        to = transition(move, row.state, job=row.id)
        revives = to in LIVE_STATES and row.state not in LIVE_STATES
        if (
            revives
            and row.unique_key is not None
            and self._live_with_key(row.unique_key, but=row.id) is not None
        ):
            raise DuplicateJobError(
                f"job {row.id} cannot become {to.value}: a live job holds its unique key"
            )
        row.state, row.reason = to, reason
        if to is State.ENQUEUED:
            row.enqueued_at, row.server_id = now, None
            if fresh_start:
                row.scheduled_at = row.finished_at = row.expire_at = None
                row.retry_count = 0
        elif to is State.DELETED:
            row.finished_at, row.expire_at, row.server_id = now, expire_at, None
        self._record(row, to, now, reason)

    def _resolve(self, now: float, parents: Sequence[int] | None = None) -> None:
        for child in sorted(self._t.jobs.values(), key=lambda r: r.id):
            if child.state is not State.AWAITING or child.parent_id is None:
                continue
            if parents is not None and child.parent_id not in parents:
                continue
            parent = self._t.jobs.get(child.parent_id)
            if parent is None or parent.state not in PARENT_DONE:
                continue
            move = continuation_move(parent.state, child.continuation_on or "succeeded")
            if move is not None:
                self._move(child, move, now, f"Parent job {parent.id} is {parent.state.value}")

    def _insert(self, job: NewJob, now: float) -> tuple[int, bool]:
        if job.unique_key is not None:
            existing = self._live_with_key(job.unique_key)
            if existing is not None:
                return existing, False
        state, reason = job.state, job.reason
        if job.parent_id is not None:
            parent = self._t.jobs.get(job.parent_id)
            if parent is None:
                raise JobNotFoundError(f"parent job {job.parent_id} does not exist")
            after = continuation_state(parent.state, job.continuation_on or "succeeded")
            if after is None:
                state, reason = State.AWAITING, f"Waiting for job {job.parent_id}"
            else:
                state, reason = after, f"Parent job {job.parent_id} is {parent.state.value}"
        elif job.parent_batch_id is not None:
            state, reason = self._batch_continuation_start(job.parent_batch_id, job.continuation_on)
        if state not in INITIAL_STATES:
            raise ValueError(f"a job cannot be created {state.value}")
        row = _Row(
            id=self._t.next_id,
            target=job.target,
            args=job.args,
            kwargs=job.kwargs,
            queue=job.queue,
            state=state,
            reason=reason,
            created_at=now,
            scheduled_at=job.scheduled_at,
            enqueued_at=now if state is State.ENQUEUED else None,
            finished_at=now if state is State.DELETED else None,
            unique_key=job.unique_key,
            parent_id=job.parent_id,
            continuation_on=job.continuation_on,
            recurring_id=job.recurring_id,
            mutex_key=job.mutex_key,
            limit=job.limit,
            rate_key=job.rate_key,
            rate_n=job.rate_n,
            rate_period=job.rate_period,
            partition_key=job.partition_key,
            batch_id=job.batch_id,
            parent_batch_id=job.parent_batch_id,
            tags=list(dict.fromkeys(job.tags)),
        )
        self._t.next_id += 1
        self._t.jobs[row.id] = row
        self._record(row, state, now, reason)
        return row.id, True

    # -- writes -------------------------------------------------------------------------

    def create_job(self, job: NewJob, now: float, connection: Any = None) -> tuple[int, bool]:
        if connection is not None:
            self.driver_connection(connection)
        with self._t.lock:
            created = self._insert(job, now)
            self._commit()
            return created

    def get_job(self, job_id: int) -> Job | None:
        return self._monitoring.get_job(job_id)

    # -- progress ---------------------------------------------------------------------

    def save_progress(self, updates: Sequence[ProgressUpdate]) -> None:
        with self._t.lock:
            for u in updates:
                row = self._t.jobs.get(u.job_id)
                if row is None or row.attempt != u.attempt:
                    continue
                if u.lines:
                    row.log = merge_log(row.log, u.lines, LOG_LINES)
                if u.percent is not None:
                    row.progress, row.progress_message = u.percent, u.message
            self._commit()

    # -- batches ----------------------------------------------------------------------

    def _batch_continuation_start(self, batch_id: int, on: str | None) -> tuple[State, str]:
        b = self._t.batches.get(batch_id)
        if b is None:
            raise JobNotFoundError(f"batch {batch_id} does not exist")
        state = self._t.batch(b).state
        move = batch_continuation_move(state, on or "succeeded")
        if move is None:
            return State.AWAITING, f"Waiting for batch {batch_id}"
        return move.target, f"Batch {batch_id} is {state.value}"

    def open_batch(
        self, now: float, parent_batch_id: int | None = None, on: str | None = None
    ) -> int:
        with self._t.lock:
            if parent_batch_id is not None and parent_batch_id not in self._t.batches:
                raise JobNotFoundError(f"batch {parent_batch_id} does not exist")
            b = _BatchRow(self._t.next_batch_id, now, parent_batch_id, on)
            self._t.next_batch_id += 1
            self._t.batches[b.id] = b
            self._commit()
            return b.id

    def add_to_batch(self, batch_id: int, jobs: Sequence[NewJob], now: float) -> list[int]:
        with self._t.lock:
            b = self._t.batches.get(batch_id)
            if b is None:
                raise JobNotFoundError(f"batch {batch_id} does not exist")
            if b.cancelled_at is not None:
                raise InvalidStateError(f"batch {batch_id} is cancelled; it takes no more jobs")
            if b.finished_at is not None and self._t.batch_counts(batch_id):
                raise InvalidStateError(f"batch {batch_id} has finished; it takes no more jobs")
            ids = []
            for job in jobs:
                member = replace(
                    job,
                    batch_id=batch_id,
                    parent_batch_id=b.parent_batch_id,
                    continuation_on=b.on if b.parent_batch_id is not None else None,
                )
                ids.append(self._insert(member, now)[0])
            self._settle(now, [batch_id])
            self._commit()
            return ids

    def discard_batch(self, batch_id: int) -> None:
        with self._t.lock:
            used = any(batch_id in (r.batch_id, r.parent_batch_id) for r in self._t.jobs.values())
            if not used:
                self._t.batches.pop(batch_id, None)

    def cancel_batch(
        self, batch_id: int, now: float, reason: str, *, expire_at: float | None = None
    ) -> list[int]:
        with self._t.lock:
            b = self._t.batches.get(batch_id)
            if b is None:
                raise JobNotFoundError(f"batch {batch_id} does not exist")
            b.cancelled_at = now
            ids = []
            for row in sorted(self._t.jobs.values(), key=_id):
                if row.batch_id == batch_id and DELETE.allows(row.state):
                    self._move(row, DELETE, now, reason, expire_at=expire_at)
                    ids.append(row.id)
            self._resolve(now, ids)
            self._settle(now, [batch_id])
            self._commit()
            return ids

    def get_batch(self, batch_id: int) -> Batch | None:
        return self._monitoring.get_batch(batch_id)

    def _settle(self, now: float, batch_ids: Sequence[int]) -> None:
        pending = list(dict.fromkeys(batch_ids))
        while pending:
            b = self._t.batches.get(pending.pop(0))
            if b is None:
                continue
            batch = self._t.batch(b)
            if batch.state is BatchState.STARTED:
                b.finished_at = None
                continue
            if b.finished_at is None:
                b.finished_at = now
            for child in sorted(self._t.jobs.values(), key=_id):
                if child.parent_batch_id != b.id or child.state is not State.AWAITING:
                    continue
                move = batch_continuation_move(batch.state, child.continuation_on or "succeeded")
                if move is not None:
                    self._move(child, move, now, f"Batch {b.id} is {batch.state.value}")
                    if child.batch_id is not None and child.batch_id not in pending:
                        pending.append(child.batch_id)

    def _settle_of(self, now: float, job_ids: Sequence[int]) -> None:
        batches = [
            row.batch_id
            for i in job_ids
            if (row := self._t.jobs.get(i)) is not None and row.batch_id is not None
        ]
        if batches:
            self._settle(now, batches)

    def change_state(
        self, job_id: int, move: Move, now: float, reason: str, *, expire_at: float | None = None
    ) -> State:
        with self._t.lock:
            row = self._t.jobs.get(job_id)
            if row is None:
                raise JobNotFoundError(f"job {job_id} does not exist")
            previous = row.state
            self._move(row, move, now, reason, expire_at=expire_at)
            if move.target in PARENT_DONE:
                self._resolve(now, [job_id])
            self._settle_of(now, [job_id])
            self._commit()
            return previous

    # -- the worker protocol ------------------------------------------------------------

    def claim(
        self,
        server_id: str,
        queues: Sequence[str],
        limit: int,
        now: float,
        gated_limit: int | None = None,
    ) -> list[ClaimedJob]:
        claimed: list[ClaimedJob] = []
        careful_limit = limit if gated_limit is None else min(limit, gated_limit)
        with self._t.lock:
            for queue in queues:
                want = limit - len(claimed)
                if want <= 0:
                    break
                for row in self._ready(queue, want, careful_limit - len(claimed), now):
                    row.state = transition(CLAIM, row.state, job=row.id)
                    row.reason, row.server_id = None, server_id
                    row.attempt += 1
                    row.started_at = max(now, row.enqueued_at or now)
                    data = {}
                    if row.enqueued_at is not None:
                        data["latency_ms"] = round(max(0.0, now - row.enqueued_at) * 1000, 3)
                    self._record(row, row.state, now, None, server_id, data)
                    claimed.append(
                        ClaimedJob(
                            row.id,
                            row.target,
                            row.args,
                            row.kwargs,
                            row.queue,
                            row.attempt,
                            row.retry_count,
                            row.enqueued_at,
                        )
                    )
            self._commit()
        return claimed

    def _ready(self, queue: str, want: int, careful_want: int, now: float) -> list[_Row]:
        """The Enqueued rows of ``queue`` to claim now: the same rules as the SQL stores."""
        rows = self._t.jobs.values()
        ready = sorted((r for r in rows if r.queue == queue and CLAIM.allows(r.state)), key=_id)
        queue_limit = self._t.queue_limits.get(queue)
        gated = [r for r in ready if _gated(r)]
        if queue_limit is None and not gated:
            return ready[:want]
        if careful_want <= 0:
            return []
        want = careful_want
        running = Running(set(), Counter(), 0)
        for r in rows:
            if r.state is PROCESSING:
                running.per_target[r.target] += 1
                running.in_queue += r.queue == queue
                if r.mutex_key is not None:
                    running.mutexes.add(r.mutex_key)
        partitions: dict[str | None, list[Candidate]] = {}
        for r in gated:
            partitions.setdefault(r.partition_key, []).append(_candidate(r))
        groups = [*partitions.values(), [_candidate(r) for r in ready if not _gated(r)]]

        def started_since(key: str, period: float) -> int:
            return sum(
                1
                for r in rows
                if r.rate_key == key and r.started_at is not None and r.started_at >= now - period
            )

        ids = pick(round_robin(groups), running, want, queue_limit, started_since)
        return [self._t.jobs[i] for i in ids]

    def finish_and_claim(
        self,
        server_id: str,
        outcomes: Sequence[Outcome],
        queues: Sequence[str],
        limit: int,
        now: float,
        gated_limit: int | None = None,
    ) -> tuple[int, list[ClaimedJob]]:
        with self._t.lock:  # one "transaction", as on the SQL stores
            return super().finish_and_claim(server_id, outcomes, queues, limit, now, gated_limit)

    def set_queue_limit(self, queue: str, n: int | None) -> None:
        with self._t.lock:
            if n is None:
                self._t.queue_limits.pop(queue, None)
            else:
                self._t.queue_limits[queue] = n

    def _owned(self, job_id: int, attempt: int, server_id: str) -> _Row | None:
        row = self._t.jobs.get(job_id)
        if (
            row is None
            or not HAND_BACK.allows(row.state)
            or row.server_id != server_id
            or row.attempt != attempt
        ):
            return None
        return row

    def finish(self, server_id: str, outcomes: Sequence[Outcome], now: float) -> int:
        written = 0
        with self._t.lock:
            finished: list[int] = []
            for o in outcomes:
                row = self._owned(o.job_id, o.attempt, server_id)
                if row is None:
                    continue
                row.state = transition(FINISH_MOVES[o.state], row.state, job=row.id)
                row.reason = o.reason
                row.finished_at = None if o.state is State.SCHEDULED else now
                row.expire_at, row.result, row.error = o.expire_at, o.result, o.error
                row.scheduled_at, row.retry_count = o.scheduled_at, o.retry_count
                for h in o.history:
                    self._record(row, h.state, now, h.reason, server_id, dict(h.data))
                if o.state in (State.SUCCEEDED, State.FAILED):
                    key = (stats_bucket(now), o.state, server_id)
                    self._t.stats[key] = self._t.stats.get(key, 0) + 1
                if o.state is not State.SCHEDULED:
                    finished.append(row.id)
                written += 1
            if finished:
                self._resolve(now, finished)
                self._settle_of(now, finished)
            self._commit()
        return written

    def release(
        self, server_id: str, jobs: Sequence[tuple[int, int]], now: float, reason: str
    ) -> int:
        done = 0
        with self._t.lock:
            for job_id, attempt in jobs:
                row = self._owned(job_id, attempt, server_id)
                if row is not None:
                    self._move(row, HAND_BACK, now, reason, fresh_start=False)
                    done += 1
            self._commit()
        return done

    def register_server(
        self,
        server_id: str,
        hostname: str,
        pid: int,
        queues: Sequence[str],
        concurrency: int,
        now: float,
    ) -> None:
        with self._t.lock:
            existing = self._t.servers.get(server_id)
            if existing is not None:
                existing.heartbeat = now
                return
            info = ServerInfo(
                id=server_id,
                hostname=hostname,
                pid=pid,
                queues=tuple(queues),
                concurrency=concurrency,
                started_at=to_datetime(now),  # type: ignore[arg-type]
                heartbeat_at=to_datetime(now),  # type: ignore[arg-type]
            )
            self._t.servers[server_id] = _Server(info, now)

    def heartbeat(
        self, server_id: str, now: float, running: Sequence[tuple[int, int]]
    ) -> tuple[bool, list[tuple[int, int]]]:
        with self._t.lock:
            server = self._t.servers.get(server_id)
            if server is not None:
                server.heartbeat = now
            lost = [(j, a) for j, a in running if self._owned(j, a, server_id) is None]
            return server is not None, lost

    def remove_server(self, server_id: str) -> None:
        with self._t.lock:
            self._t.servers.pop(server_id, None)

    def enqueue_due(self, now: float, limit: int = 1000) -> tuple[int, float | None]:
        with self._t.lock:
            due = sorted(
                (
                    r
                    for r in self._t.jobs.values()
                    if DUE.allows(r.state) and r.scheduled_at is not None and r.scheduled_at <= now
                ),
                key=lambda r: r.scheduled_at or 0.0,
            )[:limit]
            for row in due:
                self._move(row, DUE, now, "Scheduled time reached", fresh_start=False)
            self._resolve(now)
            waiting = [
                r.scheduled_at
                for r in self._t.jobs.values()
                if DUE.allows(r.state) and r.scheduled_at is not None
            ]
            self._commit()
            return len(due), (min(waiting) if waiting else None)

    def rescue(self, now: float, server_timeout: float) -> list[int]:
        with self._t.lock:
            dead = [s for s, v in self._t.servers.items() if v.heartbeat < now - server_timeout]
            for server_id in dead:
                del self._t.servers[server_id]
            orphans = [
                r
                for r in sorted(self._t.jobs.values(), key=lambda r: r.id)
                if HAND_BACK.allows(r.state) and r.server_id not in self._t.servers
            ]
            for row in orphans:
                why = "stopped heart-beating" if row.server_id in dead else "is gone"
                self._move(
                    row,
                    HAND_BACK,
                    now,
                    f"Server {row.server_id} {why}; job requeued",
                    fresh_start=False,
                )
            self._commit()
            return [r.id for r in orphans]

    def expire(self, now: float, limit: int = 1000) -> int:
        with self._t.lock:
            gone = [
                r.id for r in self._t.jobs.values() if r.expire_at is not None and r.expire_at < now
            ][:limit]
            for job_id in gone:
                del self._t.jobs[job_id]
            keep_from = stats_bucket(now) - STATS_KEEP
            self._t.stats = {k: v for k, v in self._t.stats.items() if k[0] >= keep_from}
            self._commit()
            return len(gone)

    # -- recurring ----------------------------------------------------------------------

    def save_recurring(self, rec: RecurringJob, now: float) -> None:
        with self._t.lock:
            old = self._t.recurring.get(rec.id)
            self._t.recurring[rec.id] = RecurringJob(
                id=rec.id,
                target=rec.target,
                args=rec.args,
                kwargs=rec.kwargs,
                cron=rec.cron,
                tz=rec.tz,
                queue=rec.queue,
                misfire=rec.misfire,
                next_run_at=rec.next_run_at,
                last_run_at=old.last_run_at if old else None,
                last_job_id=old.last_job_id if old else None,
                error=None,
                created_at=old.created_at if old else now,
            )
            self._commit()

    def get_recurring(self, recurring_id: str) -> RecurringJob | None:
        with self._t.lock:
            return self._t.recurring.get(recurring_id)

    def remove_recurring(self, recurring_id: str) -> bool:
        with self._t.lock:
            return self._t.recurring.pop(recurring_id, None) is not None

    def fire_recurring(
        self, now: float, plan: RecurringPlan, only: str | None = None
    ) -> tuple[list[int], float | None]:
        created: list[int] = []
        with self._t.lock:
            if only is not None:
                if only not in self._t.recurring:
                    raise JobNotFoundError(f"recurring job {only!r} does not exist")
                due = [self._t.recurring[only]]
            else:
                due = [
                    r
                    for r in self._t.recurring.values()
                    if r.next_run_at is not None and r.next_run_at <= now
                ]
            for rec in due:
                jobs, next_run, error = plan(rec, now)
                last_job = rec.last_job_id
                for job in jobs:
                    last_job, _ = self._insert(job, now)
                    created.append(last_job)
                self._t.recurring[rec.id] = RecurringJob(
                    id=rec.id,
                    target=rec.target,
                    args=rec.args,
                    kwargs=rec.kwargs,
                    cron=rec.cron,
                    tz=rec.tz,
                    queue=rec.queue,
                    misfire=rec.misfire,
                    next_run_at=rec.next_run_at if only is not None else next_run,
                    last_run_at=now if jobs else rec.last_run_at,
                    last_job_id=last_job,
                    error=error,
                    created_at=rec.created_at,
                )
            times = [r.next_run_at for r in self._t.recurring.values() if r.next_run_at is not None]
            self._commit()
            return created, (min(times) if times else None)

    # -- signals ------------------------------------------------------------------------

    async def state_changes(self, poll_interval: float = 0.05) -> AsyncIterator[StateChange]:
        with self._t.lock:
            seen = len(self._t.changes)
        while True:
            with self._t.lock:
                fresh = self._t.changes[seen:]
                seen += len(fresh)
            for change in fresh:
                yield change
            await asyncio.sleep(poll_interval)

    def waker(self, queues: Sequence[str]) -> Waker:
        return _VersionWaker(self._t)


class _VersionWaker(Waker):
    """Wakes when the tables change (any commit) or when poked."""

    def __init__(self, tables: _Tables, interval: float = 0.001) -> None:
        self._t = tables
        self._seen = tables.version
        self._interval = interval
        self._poked = threading.Event()

    def poke(self) -> None:
        self._poked.set()

    async def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._poked.is_set():
                self._poked.clear()
                return
            if self._t.version != self._seen:
                self._seen = self._t.version
                return
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        """Nothing to release."""


__all__ = ["MemoryMonitoring", "MemoryStorage"]
