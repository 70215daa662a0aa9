"""The job store and the monitoring API written once over a :class:`Connector`.

A backend subclasses :class:`SqlStorage` only where its SQL really differs (the hot
paths: claim, finish, create). Times are epoch seconds passed in from the engine's
clock, so tests can move time without sleeping.
"""

from __future__ import annotations

import abc
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from ..concurrency import Candidate, Running, pick, round_robin
from ..context import LOG_LINES
from ..errors import DuplicateJobError, InvalidStateError, JobNotFoundError
from ..model import (
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
from ..monitoring import (
    STATS_BUCKET,
    MonitoringApi,
    Throughput,
    check_bucket,
    stats_bucket,
    sum_throughput,
)
from ..serialization import loads_args, loads_value
from ..states import (
    DELETE,
    DUE,
    HAND_BACK,
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
from . import statements as q
from .connector import Connector, Waker, marks
from .store import RecurringPlan, Storage

STATS_KEEP = 8 * 86400  # how long counters are kept
QUEUE_LIMITS_TTL = 1.0  # seconds a server trusts the queue limits it read


def latency_json(job: ClaimedJob, now: float) -> str | None:
    """A claim history row's details: how long the job waited in its queue."""
    if job.enqueued_at is None:
        return None
    # the claim's clock was read before its transaction: a job enqueued in between would
    # otherwise show a negative wait
    return '{"latency_ms": %.3f}' % (max(0.0, now - job.enqueued_at) * 1000)


def job_from_row(row: Sequence[Any], tags: Sequence[str] = (), history: Sequence[Any] = ()) -> Job:
    """A Job from a row selected with JOB_COLUMNS."""
    args, kwargs = loads_args(row[2], row[3])
    return Job(
        id=row[0],
        target=row[1],
        args=args,
        kwargs=kwargs,
        queue=row[4],
        state=State(row[5]),
        reason=row[6],
        attempt=row[7],
        retry_count=row[8],
        created_at=to_datetime(row[9]),  # type: ignore[arg-type]
        scheduled_at=to_datetime(row[10]),
        enqueued_at=to_datetime(row[11]),
        started_at=to_datetime(row[12]),
        finished_at=to_datetime(row[13]),
        expire_at=to_datetime(row[14]),
        server_id=row[15],
        unique_key=row[16],
        parent_id=row[17],
        continuation_on=row[18],
        recurring_id=row[19],
        result=loads_value(row[20]),
        error=row[21],
        progress=row[22],
        progress_message=row[23],
        log=parse_log(row[24]),
        batch_id=row[25],
        tags=tuple(tags),
        history=tuple(
            StateRecord(
                state=State(h[0]),
                at=to_datetime(h[1]),  # type: ignore[arg-type]
                reason=h[2],
                server_id=h[3],
                data=json.loads(h[4]) if h[4] else {},
            )
            for h in history
        ),
    )


def recurring_from_row(row: Sequence[Any]) -> RecurringJob:
    """A RecurringJob from a row selected with RECURRING_COLUMNS."""
    return RecurringJob(*row)


class SqlMonitoring(MonitoringApi):
    """The monitoring API's queries over a connector."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    def get_job(self, job_id: int) -> Job | None:
        c = self.connector
        with c.transaction(write=False) as conn:
            row = c.execute(conn, q.JOB_BY_ID, (job_id,)).fetchone()
            if row is None:
                return None
            tags = [r[0] for r in c.execute(conn, q.TAGS_OF, (job_id,))]
            history = c.execute(conn, q.HISTORY_OF, (job_id,)).fetchall()
        return job_from_row(row, tags, history)

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
        where, params = _filters(state, queue, tag, target, search, retrying, since)
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(
                conn,
                f"SELECT {q.JOB_COLUMNS} FROM diquis_jobs{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            tags: dict[int, list[str]] = {}
            if rows:
                marks = ", ".join("?" for _ in rows)
                for job_id, tag_text in c.execute(
                    conn,
                    f"SELECT job_id, tag FROM diquis_job_tags WHERE job_id IN ({marks}) "
                    "ORDER BY tag",
                    [r[0] for r in rows],
                ):
                    tags.setdefault(job_id, []).append(tag_text)
        return [job_from_row(r, tags.get(r[0], ())) for r in rows]

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
        where, params = _filters(state, queue, tag, target, search, retrying, since)
        c = self.connector
        with c.transaction(write=False) as conn:
            row = c.execute(conn, f"SELECT count(*) FROM diquis_jobs{where}", params).fetchone()
        return int(row[0])

    def state_counts(self) -> dict[State, int]:
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(conn, q.COUNT_BY_STATE).fetchall()
        counts = dict.fromkeys(State, 0)
        counts.update({State(r[0]): int(r[1]) for r in rows})
        return counts

    def children(self, job_id: int) -> list[Job]:
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(conn, q.CHILDREN, (job_id,)).fetchall()
        return [job_from_row(r) for r in rows]

    def get_batch(self, batch_id: int) -> Batch | None:
        c = self.connector
        with c.transaction(write=False) as conn:
            row = c.execute(conn, q.BATCH_BY_ID, (batch_id,)).fetchone()
            return None if row is None else self._batch(conn, row)

    def _batch(self, conn: Any, row: Sequence[Any]) -> Batch:
        c = self.connector
        counts = {State(r[0]): int(r[1]) for r in c.execute(conn, q.BATCH_COUNTS, (row[0],))}
        continuations = tuple(r[0] for r in c.execute(conn, q.BATCH_CONTINUATIONS, (row[0],)))
        return Batch(
            id=int(row[0]),
            state=batch_state(counts, row[3] is not None),
            counts=counts,
            created_at=to_datetime(row[1]),  # type: ignore[arg-type]
            finished_at=to_datetime(row[2]) if row[3] is None else to_datetime(row[3]),
            continuations=continuations,
            parent_batch_id=row[4],
        )

    def list_batches(self, limit: int = 50, offset: int = 0) -> list[Batch]:
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(conn, q.BATCHES, (limit, offset)).fetchall()
            return [self._batch(conn, r) for r in rows]

    def count_batches(self) -> int:
        c = self.connector
        with c.transaction(write=False) as conn:
            return int(c.execute(conn, q.COUNT_BATCHES).fetchone()[0])

    def batch_jobs(self, batch_id: int, limit: int = 50, offset: int = 0) -> list[Job]:
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(conn, q.BATCH_JOBS, (batch_id, limit, offset)).fetchall()
        return [job_from_row(r) for r in rows]

    def running_on(self, server_id: str) -> list[Job]:
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(conn, q.RUNNING_ON, (server_id,)).fetchall()
        return [job_from_row(r) for r in rows]

    def list_servers(self) -> list[ServerInfo]:
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(conn, q.SERVERS).fetchall()
        return [
            ServerInfo(
                id=r[0],
                hostname=r[1],
                pid=r[2],
                queues=tuple(json.loads(r[3])),
                concurrency=r[4],
                started_at=to_datetime(r[5]),  # type: ignore[arg-type]
                heartbeat_at=to_datetime(r[6]),  # type: ignore[arg-type]
            )
            for r in rows
        ]

    def list_recurring(self) -> list[RecurringJob]:
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(conn, q.ALL_RECURRING).fetchall()
        return [recurring_from_row(r) for r in rows]

    def throughput(self, since: float, bucket: int = STATS_BUCKET) -> list[Throughput]:
        check_bucket(bucket)
        c = self.connector
        with c.transaction(write=False) as conn:
            rows = c.execute(conn, q.THROUGHPUT, (stats_bucket(since),)).fetchall()
        return sum_throughput(rows, bucket)


def _filters(
    state: State | None,
    queue: str | None,
    tag: str | None,
    target: str | None,
    search: str | None = None,
    retrying: bool = False,
    since: float | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if state is not None:
        clauses.append("state = ?")
        params.append(State(state).value)
    if queue is not None:
        clauses.append("queue = ?")
        params.append(queue)
    if target is not None:
        clauses.append("target = ?")
        params.append(target)
    if tag is not None:
        clauses.append("id IN (SELECT job_id FROM diquis_job_tags WHERE tag = ?)")
        params.append(tag)
    if since is not None:
        clauses.append("created_at >= ?")
        params.append(since)
    if retrying:
        clauses.append("state = ? AND retry_count > 0")
        params.append(State.SCHEDULED.value)
    if search:
        term = search.strip()
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        alternatives = [
            "target LIKE ? ESCAPE '\\'",
            "id IN (SELECT job_id FROM diquis_job_tags WHERE tag LIKE ? ESCAPE '\\')",
        ]
        params_s: list[Any] = [like, like]
        if term.isdigit() and len(term) < 19:
            alternatives.append("id = ?")
            params_s.append(int(term))
        clauses.append("(" + " OR ".join(alternatives) + ")")
        params.extend(params_s)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class SqlStorage(Storage):
    """The job store over a connector: writes and the worker protocol."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.name = connector.name
        self._monitoring = SqlMonitoring(connector)
        self._queue_limits: tuple[float, dict[str, int]] | None = None

    @property
    def monitoring(self) -> MonitoringApi:
        return self._monitoring

    # -- connections (the connector's, for subclasses and callers) ----------------------

    def transaction(self, write: bool = True) -> Any:
        """A connection inside a transaction (see :meth:`Connector.transaction`)."""
        return self.connector.transaction(write)

    def execute(self, conn: Any, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement on ``conn`` and return its cursor."""
        return self.connector.execute(conn, query, params)

    def executemany(self, conn: Any, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``."""
        self.connector.executemany(conn, query, rows)

    def migrate(self) -> None:
        self.connector.migrate()

    def close(self) -> None:
        self.connector.close()

    def driver_connection(self, connection: Any) -> Any:
        return self.connector.driver_connection(connection)

    def state_changes(self, poll_interval: float = 0.05) -> AsyncIterator[StateChange]:
        return self.connector.state_changes(poll_interval)

    def waker(self, queues: Sequence[str]) -> Waker:
        return self.connector.waker(queues)

    # -- creating jobs ----------------------------------------------------------------

    def create_job(self, job: NewJob, now: float, connection: Any = None) -> tuple[int, bool]:
        if connection is not None:
            return self.insert_job(self.driver_connection(connection), job, now)
        with self.transaction() as conn:
            return self.insert_job(conn, job, now)

    def create_jobs(self, jobs: Sequence[NewJob], now: float) -> list[tuple[int, bool] | Exception]:
        if len(jobs) == 1:  # alone: the single-job path (one round trip on PostgreSQL)
            return super().create_jobs(jobs, now)
        with self.transaction() as conn:
            return self.insert_jobs(conn, jobs, now)

    def create_jobs_nowait(
        self, jobs: Sequence[NewJob], now: float
    ) -> list[tuple[int, bool] | Exception] | None:
        return None  # a database may make any write wait: a thread (or async I/O) does it

    def insert_jobs(
        self, conn: Any, jobs: Sequence[NewJob], now: float
    ) -> list[tuple[int, bool] | Exception]:
        """Insert ``jobs`` in ``conn``'s transaction, each in a savepoint: one job's error
        (that job's result) undoes only that job; a connection error raises."""
        results: list[tuple[int, bool] | Exception] = []
        for job in jobs:
            try:
                with self.connector.savepoint(conn):
                    results.append(self.insert_job(conn, job, now))
            except Exception as exc:
                if self.connector.is_connection_error(exc):
                    raise
                results.append(exc)
        return results

    def insert_job(self, conn: Any, job: NewJob, now: float) -> tuple[int, bool]:
        """Insert ``job`` on ``conn``; returns the live duplicate's id for a taken unique key."""
        if job.unique_key is not None:
            existing = self._live_with_key(conn, job.unique_key)
            if existing is not None:
                return existing, False
        state, reason = job.state, job.reason
        if job.parent_id is not None:
            state, reason = self._continuation_start(conn, job)
        elif job.parent_batch_id is not None:
            state, reason = self._batch_continuation_start(conn, job.parent_batch_id, job)
        finished = now if state is State.DELETED else None
        enqueued = now if state is State.ENQUEUED else None
        try:
            row = self.execute(
                conn,
                q.INSERT_JOB,
                (
                    job.target,
                    job.args,
                    job.kwargs,
                    job.queue,
                    state.value,
                    reason,
                    now,
                    job.scheduled_at,
                    enqueued,
                    finished,
                    job.unique_key,
                    job.parent_id,
                    job.continuation_on,
                    job.recurring_id,
                    job.mutex_key,
                    job.limit,
                    job.rate_key,
                    job.rate_n,
                    job.rate_period,
                    job.partition_key,
                    int(job.gated),
                    job.batch_id,
                    job.parent_batch_id,
                ),
            ).fetchone()
        except Exception as exc:
            if job.unique_key is not None and self.connector.is_unique_violation(exc):
                existing = self._live_with_key(conn, job.unique_key)
                if existing is not None:
                    return existing, False
            raise
        job_id = int(row[0])
        self.execute(conn, q.INSERT_HISTORY, (job_id, state.value, now, reason))
        self.executemany(conn, q.INSERT_TAG, [(tag, job_id) for tag in job.tags])
        return job_id, True

    def _live_with_key(self, conn: Any, key: str) -> int | None:
        row = self.execute(conn, q.LIVE_WITH_KEY, (key,)).fetchone()
        return None if row is None else int(row[0])

    def _continuation_start(self, conn: Any, job: NewJob) -> tuple[State, str | None]:
        row = self.execute(
            conn, q.STATE_OF + self.connector.lock_for_share, (job.parent_id,)
        ).fetchone()
        if row is None:
            raise JobNotFoundError(f"parent job {job.parent_id} does not exist")
        parent = State(row[0])
        after = continuation_state(parent, job.continuation_on or "succeeded")
        if after is None:
            return State.AWAITING, f"Waiting for job {job.parent_id}"
        return after, f"Parent job {job.parent_id} is {parent.value}"

    def get_job(self, job_id: int) -> Job | None:
        return self._monitoring.get_job(job_id)

    # -- progress ---------------------------------------------------------------------

    def save_progress(self, updates: Sequence[ProgressUpdate]) -> None:
        if not updates:
            return
        with self.transaction() as conn:
            for u in updates:
                row = self.execute(conn, q.LOG_OF, (u.job_id, u.attempt)).fetchone()
                if row is None:
                    continue
                log = merge_log(row[0], u.lines, LOG_LINES) if u.lines else row[0]
                if u.percent is None:
                    self.execute(conn, q.SAVE_LOG, (log, u.job_id, u.attempt))
                else:
                    self.execute(
                        conn, q.SAVE_PROGRESS, (u.percent, u.message, log, u.job_id, u.attempt)
                    )

    # -- batches ----------------------------------------------------------------------

    def _batch_continuation_start(
        self, conn: Any, batch_id: int, job: NewJob
    ) -> tuple[State, str | None]:
        row = self.execute(
            conn, q.BATCH_BY_ID + self.connector.lock_for_share, (batch_id,)
        ).fetchone()
        if row is None:
            raise JobNotFoundError(f"batch {batch_id} does not exist")
        state = self._batch_state(conn, batch_id, row[3] is not None)
        move = batch_continuation_move(state, job.continuation_on or "succeeded")
        if move is None:
            return State.AWAITING, f"Waiting for batch {batch_id}"
        return move.target, f"Batch {batch_id} is {state.value}"

    def _batch_state(self, conn: Any, batch_id: int, cancelled: bool) -> BatchState:
        counts = {State(r[0]): int(r[1]) for r in self.execute(conn, q.BATCH_COUNTS, (batch_id,))}
        return batch_state(counts, cancelled)

    def open_batch(
        self, now: float, parent_batch_id: int | None = None, on: str | None = None
    ) -> int:
        with self.transaction() as conn:
            if parent_batch_id is not None and (
                self.execute(conn, q.BATCH_BY_ID, (parent_batch_id,)).fetchone() is None
            ):
                raise JobNotFoundError(f"batch {parent_batch_id} does not exist")
            row = self.execute(conn, q.OPEN_BATCH, (now, parent_batch_id, on)).fetchone()
        return int(row[0])

    def add_to_batch(self, batch_id: int, jobs: Sequence[NewJob], now: float) -> list[int]:
        with self.transaction() as conn:
            row = self.execute(
                conn, q.BATCH_BY_ID + self.connector.lock_for_update, (batch_id,)
            ).fetchone()
            if row is None:
                raise JobNotFoundError(f"batch {batch_id} does not exist")
            if row[3] is not None:
                raise InvalidStateError(f"batch {batch_id} is cancelled; it takes no more jobs")
            if row[2] is not None and self.execute(conn, q.BATCH_COUNTS, (batch_id,)).fetchone():
                raise InvalidStateError(f"batch {batch_id} has finished; it takes no more jobs")
            parent, on = row[4], row[5]
            state, reason = State.ENQUEUED, None
            if parent is not None:
                state, reason = self._batch_continuation_start(
                    conn, parent, NewJob("", "", "", "", State.AWAITING, continuation_on=on)
                )
            ids = self.insert_batch_jobs(conn, batch_id, parent, jobs, state, reason, now, on)
            self.settle_batches(conn, now, [batch_id])
        return ids

    def insert_batch_jobs(
        self,
        conn: Any,
        batch_id: int,
        parent_batch_id: int | None,
        jobs: Sequence[NewJob],
        state: State,
        reason: str | None,
        now: float,
        on: str | None = None,
    ) -> list[int]:
        """Insert many jobs of one batch in ``state``, with their history and tags; ids."""
        if not jobs:
            return []
        (after,) = self.execute(conn, q.MAX_JOB_ID).fetchone()
        enqueued = now if state is State.ENQUEUED else None
        finished = now if state is State.DELETED else None
        self.executemany(
            conn,
            q.INSERT_JOB_ROW,
            [
                (
                    j.target,
                    j.args,
                    j.kwargs,
                    j.queue,
                    state.value,
                    reason,
                    now,
                    None,
                    enqueued,
                    finished,
                    None,
                    None,
                    "succeeded" if parent_batch_id is not None else None,
                    None,
                    j.mutex_key,
                    j.limit,
                    j.rate_key,
                    j.rate_n,
                    j.rate_period,
                    j.partition_key,
                    int(j.gated),
                    batch_id,
                    parent_batch_id,
                )
                for j in jobs
            ],
        )
        # one writer at a time (the write transaction): the new rows are the batch's ids
        # after the largest id seen before the insert
        ids = [r[0] for r in self.execute(conn, q.BATCH_JOB_IDS, (batch_id, after)).fetchall()]
        self.executemany(conn, q.INSERT_HISTORY, [(i, state.value, now, reason) for i in ids])
        self.executemany(
            conn, q.INSERT_TAG, [(t, i) for i, j in zip(ids, jobs, strict=True) for t in j.tags]
        )
        return ids

    def discard_batch(self, batch_id: int) -> None:
        with self.transaction() as conn:
            self.execute(conn, q.DISCARD_BATCH, (batch_id, batch_id, batch_id))

    def settle_batches(self, conn: Any, now: float, batch_ids: Sequence[int]) -> None:
        """Mark batches whose jobs all finished, and move the jobs awaiting them."""
        pending = list(dict.fromkeys(batch_ids))
        while pending:
            batch_id = pending.pop(0)
            if self.execute(conn, q.BATCH_LIVE, (batch_id,)).fetchone() is not None:
                self.execute(conn, q.BATCH_REOPENED, (batch_id,))
                continue
            row = self.execute(conn, q.BATCH_BY_ID, (batch_id,)).fetchone()
            if row is None:
                continue
            self.execute(conn, q.BATCH_FINISHED, (now, batch_id))
            state = self._batch_state(conn, batch_id, row[3] is not None)
            for child, on, child_batch in self.execute(
                conn, q.BATCH_AWAITING, (batch_id,)
            ).fetchall():
                move = batch_continuation_move(state, on or "succeeded")
                if move is not None:
                    self.set_state(conn, [child], move, now, f"Batch {batch_id} is {state.value}")
                    if child_batch is not None and child_batch not in pending:
                        pending.append(child_batch)

    def settle_batches_of(self, conn: Any, now: float, job_ids: Sequence[int]) -> None:
        """:meth:`settle_batches` for the batches ``job_ids`` belong to."""
        if not job_ids:
            return
        rows = self.execute(
            conn, q.BATCH_IDS_OF_JOBS + f" ({marks(len(job_ids))})", tuple(job_ids)
        ).fetchall()
        if rows:
            self.settle_batches(conn, now, [r[0] for r in rows])

    def cancel_batch(
        self, batch_id: int, now: float, reason: str, *, expire_at: float | None = None
    ) -> list[int]:
        with self.transaction() as conn:
            row = self.execute(
                conn, q.BATCH_BY_ID + self.connector.lock_for_update, (batch_id,)
            ).fetchone()
            if row is None:
                raise JobNotFoundError(f"batch {batch_id} does not exist")
            self.execute(conn, q.BATCH_CANCELLED, (now, batch_id))
            ids = [
                r[0]
                for r in self.execute(
                    conn,
                    f"SELECT id FROM diquis_jobs WHERE batch_id = ? AND {DELETE.sql_match()}"
                    + self.connector.lock_for_update,
                    (batch_id,),
                ).fetchall()
            ]
            self.set_state(conn, ids, DELETE, now, reason, expire_at=expire_at)
            self.resolve_continuations(conn, now, ids)
            self.settle_batches(conn, now, [batch_id])
        return ids

    def get_batch(self, batch_id: int) -> Batch | None:
        return self._monitoring.get_batch(batch_id)

    # -- changing state from outside a run ----------------------------------------------

    def change_state(
        self, job_id: int, move: Move, now: float, reason: str, *, expire_at: float | None = None
    ) -> State:
        with self.transaction() as conn:
            row = self.execute(
                conn, q.STATE_OF + self.connector.lock_for_update, (job_id,)
            ).fetchone()
            if row is None:
                raise JobNotFoundError(f"job {job_id} does not exist")
            current = State(row[0])
            transition(move, current, job=job_id)
            try:
                self.set_state(conn, [job_id], move, now, reason, expire_at=expire_at)
            except Exception as exc:
                if self.connector.is_unique_violation(exc):
                    raise DuplicateJobError(
                        f"job {job_id} cannot become {move.target.value}: a live job holds its"
                        " unique key"
                    ) from None
                raise
            if move.target in PARENT_DONE:
                self.resolve_continuations(conn, now, [job_id])
            self.settle_batches_of(conn, now, [job_id])
        return current

    def set_state(
        self,
        conn: Any,
        job_ids: Sequence[int],
        move: Move,
        now: float,
        reason: str | None,
        *,
        expire_at: float | None = None,
        fresh_start: bool = True,
    ) -> None:
        """Make ``move`` on ``job_ids`` (rows not in one of its sources stay), a history row each.

        An Enqueued job gets a fresh start (no schedule, expiry or past retries) unless the
        engine itself moves it on (``fresh_start=False``: a due schedule, a rescue, a
        hand-back), which keeps its retry count.
        """
        if not job_ids:
            return
        to = move.target
        if to is State.ENQUEUED:
            assignments = "state = ?, reason = ?, enqueued_at = ?, server_id = NULL"
            if fresh_start:
                assignments += (
                    ", scheduled_at = NULL, finished_at = NULL, expire_at = NULL, retry_count = 0"
                )
            params: list[Any] = [to.value, reason, now]
        elif to is State.DELETED:
            assignments = "state = ?, reason = ?, finished_at = ?, expire_at = ?, server_id = NULL"
            params = [to.value, reason, now, expire_at]
        else:
            assignments = "state = ?, reason = ?"
            params = [to.value, reason]
        self.execute(
            conn,
            f"UPDATE diquis_jobs SET {assignments} WHERE id IN ({marks(len(job_ids))})"
            f" AND {move.sql_match()}",
            (*params, *job_ids),
        )
        self.executemany(conn, q.INSERT_HISTORY, [(j, to.value, now, reason) for j in job_ids])

    def resolve_continuations(
        self, conn: Any, now: float, parent_ids: Sequence[int] | None = None
    ) -> int:
        """Start or delete Awaiting jobs whose parent has finished; how many moved."""
        query = q.SETTLED_CONTINUATIONS
        params: tuple[Any, ...] = ()
        if parent_ids is not None:
            if not parent_ids:
                return 0
            query += f" AND c.parent_id IN ({marks(len(parent_ids))})"
            params = tuple(parent_ids)
        moved = 0
        for child, parent, parent_state, on in self.execute(conn, query, params).fetchall():
            move = continuation_move(State(parent_state), on)
            if move is not None:
                self.set_state(conn, [child], move, now, f"Parent job {parent} is {parent_state}")
                moved += 1
        return moved

    # -- servers ----------------------------------------------------------------------

    def register_server(
        self,
        server_id: str,
        hostname: str,
        pid: int,
        queues: Sequence[str],
        concurrency: int,
        now: float,
    ) -> None:
        with self.transaction() as conn:
            self.execute(
                conn,
                q.REGISTER_SERVER,
                (server_id, hostname, pid, json.dumps(list(queues)), concurrency, now, now),
            )

    def heartbeat(
        self, server_id: str, now: float, running: Sequence[tuple[int, int]]
    ) -> tuple[bool, list[tuple[int, int]]]:
        with self.transaction() as conn:
            alive = self.execute(conn, q.HEARTBEAT, (now, server_id)).rowcount > 0
            if not running:
                return alive, []
            owned = {
                (r[0], r[1])
                for r in self.execute(
                    conn, q.owned_runs(len(running)), (*(j for j, _ in running), server_id)
                )
            }
        return alive, [(j, a) for j, a in running if (j, a) not in owned]

    def remove_server(self, server_id: str) -> None:
        with self.transaction() as conn:
            self.execute(conn, q.REMOVE_SERVER, (server_id,))

    # -- running jobs -----------------------------------------------------------------

    def claim(
        self,
        server_id: str,
        queues: Sequence[str],
        limit: int,
        now: float,
        gated_limit: int | None = None,
    ) -> list[ClaimedJob]:
        queue_limits = self.queue_limits()
        with self.transaction() as conn:
            return self.claim_in(conn, server_id, queues, limit, now, gated_limit, queue_limits)

    def finish_and_claim(
        self,
        server_id: str,
        outcomes: Sequence[Outcome],
        queues: Sequence[str],
        limit: int,
        now: float,
        gated_limit: int | None = None,
        *,
        careful: Collection[str] = (),
    ) -> tuple[int, list[ClaimedJob]]:
        """See :meth:`Storage.finish_and_claim`; ``careful``: queues the caller already knows
        need the careful path (gated jobs wait there), so their plain claim is not tried."""
        # a round that only claims may commit without waiting for the disk (see
        # Connector.relaxed_commits: no outcome is in it, and a lost claim runs again)
        relaxed = self.connector.relaxed_commits() if not outcomes else contextlib.nullcontext()
        with relaxed, self.transaction() as conn:
            # the limits are read in this transaction when stale: no extra one after idle
            queue_limits = self.queue_limits(conn) if limit > 0 else {}
            written = self.finish_in(conn, server_id, outcomes, now) if outcomes else 0
            claimed = (
                self.claim_in(
                    conn, server_id, queues, limit, now, gated_limit, queue_limits, careful
                )
                if limit > 0
                else []
            )
        return written, claimed

    def claim_in(
        self,
        conn: Any,
        server_id: str,
        queues: Sequence[str],
        limit: int,
        now: float,
        gated_limit: int | None,
        queue_limits: dict[str, int],
        careful: Collection[str] = (),
    ) -> list[ClaimedJob]:
        """:meth:`claim` inside the caller's transaction (``careful``: queues that take the
        careful path without trying the plain claim)."""
        claimed: list[ClaimedJob] = []
        careful_limit = limit if gated_limit is None else min(limit, gated_limit)
        for queue in queues:
            if len(claimed) >= limit:
                break
            plain: list[ClaimedJob] | None = None
            if queue not in queue_limits and queue not in careful:
                plain = self.claim_plain(conn, server_id, queue, limit - len(claimed), now)
            if plain is None:  # a queue limit, or gated jobs waiting: the careful path
                want = careful_limit - len(claimed)
                if want > 0:
                    claimed.extend(
                        self.claim_gated(conn, server_id, queue, want, now, queue_limits.get(queue))
                    )
            else:
                claimed.extend(plain)
        return claimed

    def claim_plain(
        self, conn: Any, server_id: str, queue: str, limit: int, now: float
    ) -> list[ClaimedJob] | None:
        """:meth:`claim_queue`, or None (claiming nothing) when gated jobs wait in the queue.

        A queue with jobs under mutexes, limits or partitions waiting is claimed on the
        careful path instead; PostgreSQL checks and claims in one statement.
        """
        if self.execute(conn, q.HAS_GATED, (queue,)).fetchone() is not None:
            return None
        return self.claim_queue(conn, server_id, queue, limit, now)

    def claim_gated(
        self,
        conn: Any,
        server_id: str,
        queue: str,
        want: int,
        now: float,
        queue_limit: int | None,
    ) -> list[ClaimedJob]:
        """Claim under mutexes, limits and partitions (the careful path; serialized)."""
        self.connector.lock_gated_claims(conn)
        running = Running(set(), Counter(), 0)
        for r_queue, r_target, r_mutex in self.execute(conn, q.RUNNING).fetchall():
            running.per_target[r_target] += 1
            running.in_queue += r_queue == queue
            if r_mutex is not None:
                running.mutexes.add(r_mutex)
        if queue_limit is not None and running.in_queue >= queue_limit:
            return []
        # a few more than wanted per partition: some may be waiting on a mutex
        window = want + 50
        groups: list[list[Candidate]] = []
        for (partition,) in self.execute(conn, q.GATED_PARTITIONS, (queue,)).fetchall():
            if partition is None:
                rows = self.execute(conn, q.CANDIDATES_NO_PARTITION, (queue, window))
            else:
                rows = self.execute(conn, q.CANDIDATES_IN_PARTITION, (queue, partition, window))
            groups.append([Candidate(*r) for r in rows.fetchall()])
        groups.append(
            [Candidate(*r) for r in self.execute(conn, q.CANDIDATES_UNGATED, (queue, window))]
        )

        def started_since(key: str, period: float) -> int:
            row = self.execute(conn, q.STARTED_SINCE, (key, now - period)).fetchone()
            return int(row[0])

        ids = pick(round_robin(groups), running, want, queue_limit, started_since)
        if not ids:
            return []
        rows = self.execute(conn, q.claim_ids(len(ids)), (server_id, now, now, *ids)).fetchall()
        claimed = sorted((ClaimedJob(*r) for r in rows), key=lambda j: ids.index(j.id))
        self.executemany(
            conn,
            q.INSERT_HISTORY_FULL,
            [(j.id, PROCESSING.value, now, None, server_id, latency_json(j, now)) for j in claimed],
        )
        return claimed

    def queue_limits(self, conn: Any = None) -> dict[str, int]:
        """Every queue's limit (read at most once a second: limits change rarely), in the
        caller's transaction ``conn`` if given, else in a transaction of its own."""
        cached = self._queue_limits
        if cached is not None and time.monotonic() - cached[0] < QUEUE_LIMITS_TTL:
            return cached[1]
        if conn is not None:
            limits = {r[0]: int(r[1]) for r in self.execute(conn, q.QUEUE_LIMITS).fetchall()}
        else:
            with self.transaction(write=False) as own:
                limits = {r[0]: int(r[1]) for r in self.execute(own, q.QUEUE_LIMITS).fetchall()}
        self._queue_limits = (time.monotonic(), limits)
        return limits

    def set_queue_limit(self, queue: str, n: int | None) -> None:
        with self.transaction() as conn:
            if n is None:
                self.execute(conn, q.REMOVE_QUEUE_LIMIT, (queue,))
            else:
                self.execute(conn, q.SET_QUEUE_LIMIT, (queue, n))
        self._queue_limits = None

    @abc.abstractmethod
    def claim_queue(
        self, conn: Any, server_id: str, queue: str, limit: int, now: float
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` jobs of one queue, oldest first, with their history rows.

        The one statement each database writes its own way (SKIP LOCKED on PostgreSQL, a
        single writer's UPDATE … RETURNING on SQLite).
        """

    def finish(self, server_id: str, outcomes: Sequence[Outcome], now: float) -> int:
        if not outcomes:
            return 0
        with self.transaction() as conn:
            return self.finish_in(conn, server_id, outcomes, now)

    @abc.abstractmethod
    def finish_in(self, conn: Any, server_id: str, outcomes: Sequence[Outcome], now: float) -> int:
        """:meth:`finish` inside the caller's transaction; how many runs were still ours.

        Each database writes it its own way (one set-based statement on PostgreSQL; on
        SQLite, whose write transaction excludes other writers, one read of the runs still
        ours and one ``executemany``).
        """

    def after_finish(
        self, conn: Any, server_id: str, now: float, written: Sequence[Outcome]
    ) -> None:
        """History, counters and continuations of the outcomes a finish wrote."""
        self.add_history(conn, server_id, now, written)
        self.count_outcomes(conn, server_id, now, [o.state for o in written])
        done = [o.job_id for o in written if o.state is not State.SCHEDULED]
        self.resolve_continuations(conn, now, done)
        self.settle_batches_of(conn, now, done)

    def count_outcomes(
        self, conn: Any, server_id: str, now: float, states: Sequence[State]
    ) -> None:
        """Add finished runs to this server's counters for the current hour."""
        for state in (State.SUCCEEDED, State.FAILED):
            n = sum(1 for s in states if s is state)
            if n:
                self.execute(conn, q.COUNT_OUTCOMES, (stats_bucket(now), state.value, server_id, n))

    def add_history(
        self, conn: Any, server_id: str | None, now: float, outcomes: Sequence[Outcome]
    ) -> None:
        """Append each outcome's history entries."""
        self.executemany(
            conn,
            q.INSERT_HISTORY_FULL,
            [
                (o.job_id, h.state.value, now, h.reason, server_id, h.data_json())
                for o in outcomes
                for h in o.history
            ],
        )

    def release(
        self, server_id: str, jobs: Sequence[tuple[int, int]], now: float, reason: str
    ) -> int:
        with self.transaction() as conn:
            wanted = set(jobs)
            ids = (
                [
                    r[0]
                    for r in self.execute(
                        conn,
                        q.owned_runs(len(jobs)) + self.connector.lock_for_update,
                        (*(j for j, _ in jobs), server_id),
                    ).fetchall()
                    if (r[0], r[1]) in wanted
                ]
                if jobs
                else []
            )
            self.set_state(conn, ids, HAND_BACK, now, reason, fresh_start=False)
        return len(ids)

    # -- housekeeping -----------------------------------------------------------------

    def reading(self) -> Any:
        """A connection for a few reads that need no transaction of their own."""
        return self.connector.transaction(write=False)

    def stager_due(self, now: float) -> tuple[bool, float | None, float | None]:
        """One read: an idle stager writes nothing (no write transaction, no lock)."""
        with self.reading() as conn:
            next_due, next_recurring, settled = self.execute(conn, q.STAGER_DUE).fetchone()
        next_due = None if next_due is None else float(next_due)
        next_recurring = None if next_recurring is None else float(next_recurring)
        due = bool(settled) or any(t is not None and t <= now for t in (next_due, next_recurring))
        return due, next_due, next_recurring

    def enqueue_due(self, now: float, limit: int = 1000) -> tuple[int, float | None]:
        with self.transaction() as conn:
            ids = [
                r[0]
                for r in self.execute(
                    conn, q.DUE_JOBS + self.connector.skip_locked, (now, limit)
                ).fetchall()
            ]
            self.set_state(conn, ids, DUE, now, "Scheduled time reached", fresh_start=False)
            self.resolve_continuations(conn, now)
            row = self.execute(conn, q.NEXT_DUE).fetchone()
        return len(ids), (None if row[0] is None else float(row[0]))

    def rescue(self, now: float, server_timeout: float) -> list[int]:
        with self.transaction() as conn:
            dead = [r[0] for r in self.execute(conn, q.DEAD_SERVERS, (now - server_timeout,))]
            orphans = self.execute(conn, q.ORPHANS + self.connector.skip_locked).fetchall()
            for job_id, server in orphans:
                why = "stopped heart-beating" if server in dead else "is gone"
                self.set_state(
                    conn,
                    [job_id],
                    HAND_BACK,
                    now,
                    f"Server {server} {why}; job requeued",
                    fresh_start=False,
                )
        return [r[0] for r in orphans]

    def expire(self, now: float, limit: int = 1000) -> int:
        with self.transaction() as conn:
            ids = [r[0] for r in self.execute(conn, q.EXPIRED, (now, limit)).fetchall()]
            if ids:
                where = f"IN ({marks(len(ids))})"
                self.execute(conn, f"DELETE FROM diquis_job_history WHERE job_id {where}", ids)
                self.execute(conn, f"DELETE FROM diquis_job_tags WHERE job_id {where}", ids)
                self.execute(conn, f"DELETE FROM diquis_jobs WHERE id {where}", ids)
            self.execute(conn, q.EXPIRE_STATS, (stats_bucket(now) - STATS_KEEP,))
        return len(ids)

    # -- recurring --------------------------------------------------------------------

    def save_recurring(self, rec: RecurringJob, now: float) -> None:
        with self.transaction() as conn:
            self.execute(
                conn,
                q.SAVE_RECURRING,
                (
                    rec.id,
                    rec.target,
                    rec.args,
                    rec.kwargs,
                    rec.cron,
                    rec.tz,
                    rec.queue,
                    rec.misfire,
                    rec.next_run_at,
                    None,
                    now,
                    now,
                ),
            )

    def get_recurring(self, recurring_id: str) -> RecurringJob | None:
        with self.transaction(write=False) as conn:
            row = self.execute(conn, q.RECURRING_BY_ID, (recurring_id,)).fetchone()
        return None if row is None else recurring_from_row(row)

    def remove_recurring(self, recurring_id: str) -> bool:
        with self.transaction() as conn:
            cur = self.execute(conn, q.REMOVE_RECURRING, (recurring_id,))
            return bool(cur.rowcount)

    def fire_recurring(
        self, now: float, plan: RecurringPlan, only: str | None = None
    ) -> tuple[list[int], float | None]:
        created: list[int] = []
        with self.transaction() as conn:
            if only is not None:
                rows = self.execute(
                    conn, q.RECURRING_BY_ID + self.connector.lock_for_update, (only,)
                ).fetchall()
                if not rows:
                    raise JobNotFoundError(f"recurring job {only!r} does not exist")
            else:
                rows = self.execute(
                    conn, q.DUE_RECURRING + self.connector.skip_locked, (now,)
                ).fetchall()
            for row in rows:
                rec = recurring_from_row(row)
                jobs, next_run, error = plan(rec, now)
                last_job = rec.last_job_id
                for job in jobs:
                    last_job, _ = self.insert_job(conn, job, now)
                    created.append(last_job)
                self.execute(
                    conn,
                    q.FIRED_RECURRING,
                    (
                        rec.next_run_at if only is not None else next_run,
                        now if jobs else rec.last_run_at,
                        last_job,
                        error,
                        rec.id,
                    ),
                )
            nxt = self.execute(conn, q.NEXT_RECURRING).fetchone()
        return created, (None if nxt[0] is None else float(nxt[0]))


__all__ = ["SqlMonitoring", "SqlStorage", "job_from_row", "recurring_from_row"]
