"""The storage port, and the SQL both backends share.

SQL is written once in the common subset of SQLite and PostgreSQL with ``?``
placeholders; a backend converts placeholders and replaces the hot paths (claim,
finish, create) where its dialect does better. Times are epoch seconds passed in from
the engine's clock, so tests can move time without sleeping.
"""

from __future__ import annotations

import abc
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from ..errors import DuplicateJobError, InvalidStateError, JobNotFoundError
from ..model import (
    ClaimedJob,
    HistoryEntry,
    Job,
    NewJob,
    Outcome,
    RecurringJob,
    ServerInfo,
    StateChange,
    StateRecord,
    to_datetime,
)
from ..serialization import loads_args, loads_value
from ..states import LIVE_STATES, State

JOB_COLUMNS = (
    "id, target, args, kwargs, queue, state, reason, attempt, retry_count, created_at, "
    "scheduled_at, enqueued_at, started_at, finished_at, expire_at, server_id, unique_key, "
    "parent_id, continuation_on, recurring_id, result, error"
)
CLAIM_COLUMNS = "id, target, args, kwargs, queue, attempt, retry_count, enqueued_at"
RECURRING_COLUMNS = (
    "id, target, args, kwargs, cron, tz, queue, misfire, next_run_at, last_run_at, "
    "last_job_id, error, created_at"
)
LIVE_SQL = ", ".join(f"'{s}'" for s in sorted(LIVE_STATES))
STATS_BUCKET = 3600  # seconds per stored counter
STATS_KEEP = 8 * 86400  # how long counters are kept


def stats_bucket(now: float) -> int:
    """The start of the hour ``now`` falls in (the stats table's key)."""
    return int(now // STATS_BUCKET * STATS_BUCKET)


#: (recurring definition, now) -> (jobs to create, next run time, error text)
RecurringPlan = Callable[[RecurringJob, float], tuple[list[NewJob], float | None, str | None]]


def marks(n: int) -> str:
    """``?, ?, ?`` for n values."""
    return ", ".join("?" * n)


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


class Storage(abc.ABC):
    """Where jobs live: one implementation per database, all passing one contract suite."""

    #: the URL scheme(s) this backend serves, for messages
    name: str = "storage"

    # -- connections ------------------------------------------------------------------

    @abc.abstractmethod
    def transaction(self, write: bool = True) -> contextlib.AbstractContextManager[Any]:
        """A connection inside a transaction, committed on a clean exit (``write``: may write)."""

    @abc.abstractmethod
    def sql(self, query: str) -> str:
        """The query in this backend's placeholder style."""

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the job tables; safe from many processes at once."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def driver_connection(self, connection: Any) -> Any:
        """The DB-API connection inside a caller's connection (e.g. a SQLAlchemy one)."""

    @abc.abstractmethod
    def state_changes(self, poll_interval: float = 0.05) -> AsyncIterator[StateChange]:
        """Every state change from any process, as it commits (until cancelled)."""

    @abc.abstractmethod
    def waker(self, queues: Sequence[str]) -> Waker:
        """An object a server awaits while idle; it returns when new work may be there."""

    lock_for_update = ""  # " FOR UPDATE" where the dialect has row locks

    def execute(self, conn: Any, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement on ``conn`` and return its cursor."""
        return conn.execute(self.sql(query), params)

    def executemany(self, conn: Any, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``."""
        if rows:
            conn.cursor().executemany(self.sql(query), rows)

    def is_unique_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this driver's unique-constraint error."""
        return False

    # -- creating jobs ----------------------------------------------------------------

    def create_job(self, job: NewJob, now: float, connection: Any = None) -> tuple[int, bool]:
        """Insert ``job`` (in the caller's transaction if given); (id, created?)."""
        if connection is not None:
            return self.insert_job(self.driver_connection(connection), job, now)
        with self.transaction() as conn:
            return self.insert_job(conn, job, now)

    def insert_job(self, conn: Any, job: NewJob, now: float) -> tuple[int, bool]:
        """Insert ``job`` on ``conn``; returns the live duplicate's id for a taken unique key."""
        if job.unique_key is not None:
            existing = self._live_with_key(conn, job.unique_key)
            if existing is not None:
                return existing, False
        state, reason = job.state, job.reason
        if job.parent_id is not None:
            state, reason = self._continuation_start(conn, job)
        finished = now if state is State.DELETED else None
        enqueued = now if state is State.ENQUEUED else None
        try:
            row = self.execute(
                conn,
                "INSERT INTO diquis_jobs (target, args, kwargs, queue, state, reason, created_at,"
                " scheduled_at, enqueued_at, finished_at, unique_key, parent_id, continuation_on,"
                f" recurring_id) VALUES ({marks(14)}) RETURNING id",
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
                ),
            ).fetchone()
        except Exception as exc:
            if job.unique_key is not None and self.is_unique_violation(exc):
                existing = self._live_with_key(conn, job.unique_key)
                if existing is not None:
                    return existing, False
            raise
        job_id = int(row[0])
        self.execute(
            conn,
            "INSERT INTO diquis_job_history (job_id, state, at, reason) VALUES (?, ?, ?, ?)",
            (job_id, state.value, now, reason),
        )
        self.executemany(
            conn,
            "INSERT INTO diquis_job_tags (tag, job_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(tag, job_id) for tag in job.tags],
        )
        return job_id, True

    def _live_with_key(self, conn: Any, key: str) -> int | None:
        row = self.execute(
            conn,
            f"SELECT id FROM diquis_jobs WHERE unique_key = ? AND state IN ({LIVE_SQL})",
            (key,),
        ).fetchone()
        return None if row is None else int(row[0])

    def _continuation_start(self, conn: Any, job: NewJob) -> tuple[State, str | None]:
        row = self.execute(
            conn,
            f"SELECT state FROM diquis_jobs WHERE id = ?{self.lock_for_share}",
            (job.parent_id,),
        ).fetchone()
        if row is None:
            raise JobNotFoundError(f"parent job {job.parent_id} does not exist")
        parent = State(row[0])
        after = continuation_state(parent, job.continuation_on or "succeeded")
        if after is None:
            return State.AWAITING, f"Waiting for job {job.parent_id}"
        return after, f"Parent job {job.parent_id} is {parent.value}"

    lock_for_share = ""

    # -- reading ----------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job | None:
        """The job with its tags and full history, or None."""
        with self.transaction(write=False) as conn:
            row = self.execute(
                conn, f"SELECT {JOB_COLUMNS} FROM diquis_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return None
            tags = [
                r[0]
                for r in self.execute(
                    conn, "SELECT tag FROM diquis_job_tags WHERE job_id = ? ORDER BY tag", (job_id,)
                )
            ]
            history = self.execute(
                conn,
                "SELECT state, at, reason, server_id, data FROM diquis_job_history"
                " WHERE job_id = ? ORDER BY id",
                (job_id,),
            ).fetchall()
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
    ) -> list[Job]:
        """Jobs newest first, filtered (no history); ``search``: an id, target part or tag."""
        where, params = self._filters(state, queue, tag, target, search, retrying)
        with self.transaction(write=False) as conn:
            rows = self.execute(
                conn,
                f"SELECT {JOB_COLUMNS} FROM diquis_jobs{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [job_from_row(r) for r in rows]

    def count_jobs(
        self,
        *,
        state: State | None = None,
        queue: str | None = None,
        tag: str | None = None,
        target: str | None = None,
        search: str | None = None,
        retrying: bool = False,
    ) -> int:
        """How many jobs match the filters of :meth:`list_jobs`."""
        where, params = self._filters(state, queue, tag, target, search, retrying)
        with self.transaction(write=False) as conn:
            row = self.execute(conn, f"SELECT count(*) FROM diquis_jobs{where}", params).fetchone()
        return int(row[0])

    def _filters(
        self,
        state: State | None,
        queue: str | None,
        tag: str | None,
        target: str | None,
        search: str | None = None,
        retrying: bool = False,
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
        if retrying:
            clauses.append("state = 'Scheduled' AND retry_count > 0")
        if search:
            term = search.strip()
            escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = f"%{escaped}%"
            alternatives = [
                "target LIKE ? ESCAPE '\\'",
                "id IN (SELECT job_id FROM diquis_job_tags WHERE tag = ?)",
            ]
            params_s: list[Any] = [like, term]
            if term.isdigit() and len(term) < 19:
                alternatives.append("id = ?")
                params_s.append(int(term))
            clauses.append("(" + " OR ".join(alternatives) + ")")
            params.extend(params_s)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def state_counts(self) -> dict[State, int]:
        """How many jobs are in each state."""
        with self.transaction(write=False) as conn:
            rows = self.execute(
                conn, "SELECT state, count(*) FROM diquis_jobs GROUP BY state"
            ).fetchall()
        counts = dict.fromkeys(State, 0)
        counts.update({State(r[0]): int(r[1]) for r in rows})
        return counts

    def children(self, job_id: int) -> list[Job]:
        """The continuations of a job, oldest first."""
        with self.transaction(write=False) as conn:
            rows = self.execute(
                conn,
                f"SELECT {JOB_COLUMNS} FROM diquis_jobs WHERE parent_id = ? ORDER BY id",
                (job_id,),
            ).fetchall()
        return [job_from_row(r) for r in rows]

    def running_on(self, server_id: str) -> list[Job]:
        """The jobs a server is processing now."""
        with self.transaction(write=False) as conn:
            rows = self.execute(
                conn,
                f"SELECT {JOB_COLUMNS} FROM diquis_jobs WHERE state = 'Processing'"
                " AND server_id = ? ORDER BY id",
                (server_id,),
            ).fetchall()
        return [job_from_row(r) for r in rows]

    def throughput(self, since: float, bucket: int = 3600) -> list[tuple[float, State, int]]:
        """Succeeded and failed runs per ``bucket`` seconds (a multiple of an hour) since then."""
        if bucket < STATS_BUCKET or bucket % STATS_BUCKET:
            raise ValueError(f"bucket must be a multiple of {STATS_BUCKET} seconds, got {bucket}")
        with self.transaction(write=False) as conn:
            rows = self.execute(
                conn,
                "SELECT bucket, state, sum(count) FROM diquis_stats WHERE bucket >= ?"
                " GROUP BY bucket, state ORDER BY bucket",
                (stats_bucket(since),),
            ).fetchall()
        totals: dict[tuple[float, State], int] = {}
        for start, state, count in rows:
            key = (float(int(start) // bucket * bucket), State(state))
            totals[key] = totals.get(key, 0) + int(count)
        return [(start, state, n) for (start, state), n in sorted(totals.items())]

    # -- changing state from outside a run ----------------------------------------------

    def change_state(
        self,
        job_id: int,
        to: State,
        allowed_from: frozenset[State],
        now: float,
        reason: str,
        *,
        expire_at: float | None = None,
    ) -> State:
        """Move a job to ``to`` if its state is in ``allowed_from``; returns the old state."""
        with self.transaction() as conn:
            row = self.execute(
                conn,
                f"SELECT state FROM diquis_jobs WHERE id = ?{self.lock_for_update}",
                (job_id,),
            ).fetchone()
            if row is None:
                raise JobNotFoundError(f"job {job_id} does not exist")
            current = State(row[0])
            if current not in allowed_from:
                raise InvalidStateError(
                    f"job {job_id} is {current.value}; it cannot become {to.value} from there"
                )
            try:
                self.set_state(conn, [job_id], to, now, reason, expire_at=expire_at)
            except Exception as exc:
                if self.is_unique_violation(exc):
                    raise DuplicateJobError(
                        f"job {job_id} cannot become {to.value}: a live job holds its unique key"
                    ) from None
                raise
            if to in (State.DELETED, State.SUCCEEDED, State.FAILED):
                self.resolve_continuations(conn, now, [job_id])
        return current

    def set_state(
        self,
        conn: Any,
        job_ids: Sequence[int],
        to: State,
        now: float,
        reason: str | None,
        *,
        expire_at: float | None = None,
        fresh_start: bool = True,
    ) -> None:
        """Move ``job_ids`` to ``to`` with a history row each (no checks: callers check).

        An Enqueued job gets a fresh start (no schedule, expiry or past retries) unless the
        engine itself moves it on (``fresh_start=False``: a due schedule, a rescue, a
        hand-back), which keeps its retry count.
        """
        if not job_ids:
            return
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
            f"UPDATE diquis_jobs SET {assignments} WHERE id IN ({marks(len(job_ids))})",
            (*params, *job_ids),
        )
        self.executemany(
            conn,
            "INSERT INTO diquis_job_history (job_id, state, at, reason) VALUES (?, ?, ?, ?)",
            [(j, to.value, now, reason) for j in job_ids],
        )

    def resolve_continuations(
        self, conn: Any, now: float, parent_ids: Sequence[int] | None = None
    ) -> int:
        """Start or delete Awaiting jobs whose parent has finished; how many moved."""
        query = (
            "SELECT c.id, p.id, p.state, c.continuation_on FROM diquis_jobs c"
            " JOIN diquis_jobs p ON c.parent_id = p.id"
            " WHERE c.state = 'Awaiting' AND p.state IN ('Succeeded', 'Deleted', 'Failed')"
        )
        params: tuple[Any, ...] = ()
        if parent_ids is not None:
            if not parent_ids:
                return 0
            query += f" AND p.id IN ({marks(len(parent_ids))})"
            params = tuple(parent_ids)
        moved = 0
        for child, parent, parent_state, on in self.execute(conn, query, params).fetchall():
            after = continuation_state(State(parent_state), on)
            if after is not None:
                self.set_state(conn, [child], after, now, f"Parent job {parent} is {parent_state}")
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
        """Announce a running server (or refresh its row)."""
        with self.transaction() as conn:
            self.execute(
                conn,
                "INSERT INTO diquis_servers (id, hostname, pid, queues, concurrency, started_at,"
                " heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at",
                (server_id, hostname, pid, json.dumps(list(queues)), concurrency, now, now),
            )

    def heartbeat(
        self, server_id: str, now: float, running: Sequence[tuple[int, int]]
    ) -> tuple[bool, list[tuple[int, int]]]:
        """Record that a server lives; (was it still registered?, (job, attempt) runs it lost).

        A run is lost once its job is no longer Processing on this server at that attempt:
        deleted, rescued by another server, or requeued and claimed again (a new attempt).
        """
        with self.transaction() as conn:
            alive = (
                self.execute(
                    conn,
                    "UPDATE diquis_servers SET heartbeat_at = ? WHERE id = ?",
                    (now, server_id),
                ).rowcount
                > 0
            )
            if not running:
                return alive, []
            owned = {
                (r[0], r[1])
                for r in self.execute(
                    conn,
                    f"SELECT id, attempt FROM diquis_jobs WHERE id IN ({marks(len(running))})"
                    " AND state = 'Processing' AND server_id = ?",
                    (*(j for j, _ in running), server_id),
                )
            }
        return alive, [(j, a) for j, a in running if (j, a) not in owned]

    def remove_server(self, server_id: str) -> None:
        """Forget a server that stopped cleanly."""
        with self.transaction() as conn:
            self.execute(conn, "DELETE FROM diquis_servers WHERE id = ?", (server_id,))

    def list_servers(self) -> list[ServerInfo]:
        """Every registered server, oldest first."""
        with self.transaction(write=False) as conn:
            rows = self.execute(
                conn,
                "SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at"
                " FROM diquis_servers ORDER BY started_at",
            ).fetchall()
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

    # -- running jobs -----------------------------------------------------------------

    def claim(
        self, server_id: str, queues: Sequence[str], limit: int, now: float
    ) -> list[ClaimedJob]:
        """Move up to ``limit`` Enqueued jobs (queues in priority order) to Processing."""
        claimed: list[ClaimedJob] = []
        with self.transaction() as conn:
            for queue in queues:
                want = limit - len(claimed)
                if want <= 0:
                    break
                claimed.extend(self.claim_queue(conn, server_id, queue, want, now))
        return claimed

    @abc.abstractmethod
    def claim_queue(
        self, conn: Any, server_id: str, queue: str, limit: int, now: float
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` jobs of one queue, oldest first, with their history rows."""

    def finish(self, server_id: str, outcomes: Sequence[Outcome], now: float) -> int:
        """Write how runs ended, in one transaction; runs no longer owned are ignored."""
        if not outcomes:
            return 0
        with self.transaction() as conn:
            written: list[Outcome] = []
            for o in outcomes:
                cur = self.execute(
                    conn,
                    "UPDATE diquis_jobs SET state = ?, reason = ?, finished_at = ?, expire_at = ?,"
                    " result = ?, error = ?, scheduled_at = ?, retry_count = ?"
                    " WHERE id = ? AND state = 'Processing' AND server_id = ? AND attempt = ?",
                    (
                        o.state.value,
                        o.reason,
                        None if o.state is State.SCHEDULED else now,
                        o.expire_at,
                        o.result,
                        o.error,
                        o.scheduled_at,
                        o.retry_count,
                        o.job_id,
                        server_id,
                        o.attempt,
                    ),
                )
                if cur.rowcount:
                    written.append(o)
            self.after_finish(conn, server_id, now, written)
        return len(written)

    def after_finish(
        self, conn: Any, server_id: str, now: float, written: Sequence[Outcome]
    ) -> None:
        """History, counters and continuations of the outcomes a finish wrote."""
        self.add_history(conn, server_id, now, written)
        self.count_outcomes(conn, server_id, now, [o.state for o in written])
        self.resolve_continuations(
            conn, now, [o.job_id for o in written if o.state is not State.SCHEDULED]
        )

    def count_outcomes(
        self, conn: Any, server_id: str, now: float, states: Sequence[State]
    ) -> None:
        """Add finished runs to this server's counters for the current hour."""
        for state in (State.SUCCEEDED, State.FAILED):
            n = sum(1 for s in states if s is state)
            if n:
                self.execute(
                    conn,
                    "INSERT INTO diquis_stats (bucket, state, server_id, count) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (bucket, state, server_id) DO UPDATE SET"
                    " count = diquis_stats.count + excluded.count",
                    (stats_bucket(now), state.value, server_id, n),
                )

    def add_history(
        self, conn: Any, server_id: str | None, now: float, outcomes: Sequence[Outcome]
    ) -> None:
        """Append each outcome's history entries."""
        self.executemany(
            conn,
            "INSERT INTO diquis_job_history (job_id, state, at, reason, server_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (o.job_id, h.state.value, now, h.reason, server_id, h.data_json())
                for o in outcomes
                for h in o.history
            ],
        )

    def release(
        self, server_id: str, jobs: Sequence[tuple[int, int]], now: float, reason: str
    ) -> int:
        """Hand running jobs back to their queue (a graceful stop); how many."""
        with self.transaction() as conn:
            ids = (
                [
                    r[0]
                    for r in self.execute(
                        conn,
                        f"SELECT id, attempt FROM diquis_jobs WHERE id IN ({marks(len(jobs))})"
                        f" AND state = 'Processing' AND server_id = ?{self.lock_for_update}",
                        (*(j for j, _ in jobs), server_id),
                    ).fetchall()
                    if (r[0], r[1]) in set(jobs)
                ]
                if jobs
                else []
            )
            self.set_state(conn, ids, State.ENQUEUED, now, reason, fresh_start=False)
        return len(ids)

    # -- housekeeping -----------------------------------------------------------------

    def enqueue_due(self, now: float, limit: int = 1000) -> tuple[int, float | None]:
        """Enqueue Scheduled jobs whose time has come; (how many, next due time)."""
        with self.transaction() as conn:
            ids = [
                r[0]
                for r in self.execute(
                    conn,
                    "SELECT id FROM diquis_jobs WHERE state = 'Scheduled' AND scheduled_at <= ?"
                    f" ORDER BY scheduled_at LIMIT ?{self.lock_skip_locked}",
                    (now, limit),
                ).fetchall()
            ]
            self.set_state(
                conn, ids, State.ENQUEUED, now, "Scheduled time reached", fresh_start=False
            )
            self.resolve_continuations(conn, now)
            row = self.execute(
                conn, "SELECT min(scheduled_at) FROM diquis_jobs WHERE state = 'Scheduled'"
            ).fetchone()
        return len(ids), (None if row[0] is None else float(row[0]))

    lock_skip_locked = ""

    def rescue(self, now: float, server_timeout: float) -> list[int]:
        """Forget servers silent for ``server_timeout`` and requeue their jobs; job ids."""
        with self.transaction() as conn:
            dead = [
                r[0]
                for r in self.execute(
                    conn,
                    "DELETE FROM diquis_servers WHERE heartbeat_at < ? RETURNING id",
                    (now - server_timeout,),
                ).fetchall()
            ]
            orphans = self.execute(
                conn,
                "SELECT id, server_id FROM diquis_jobs WHERE state = 'Processing' AND"
                " (server_id IS NULL OR server_id NOT IN (SELECT id FROM diquis_servers))"
                f"{self.lock_skip_locked}",
            ).fetchall()
            for job_id, server in orphans:
                why = "stopped heart-beating" if server in dead else "is gone"
                self.set_state(
                    conn,
                    [job_id],
                    State.ENQUEUED,
                    now,
                    f"Server {server} {why}; job requeued",
                    fresh_start=False,
                )
        return [r[0] for r in orphans]

    def expire(self, now: float, limit: int = 1000) -> int:
        """Delete finished jobs whose expiry has passed, with their history; how many."""
        with self.transaction() as conn:
            ids = [
                r[0]
                for r in self.execute(
                    conn,
                    "SELECT id FROM diquis_jobs WHERE expire_at < ? LIMIT ?",
                    (now, limit),
                ).fetchall()
            ]
            if ids:
                where = f"IN ({marks(len(ids))})"
                self.execute(conn, f"DELETE FROM diquis_job_history WHERE job_id {where}", ids)
                self.execute(conn, f"DELETE FROM diquis_job_tags WHERE job_id {where}", ids)
                self.execute(conn, f"DELETE FROM diquis_jobs WHERE id {where}", ids)
            self.execute(
                conn, "DELETE FROM diquis_stats WHERE bucket < ?", (stats_bucket(now) - STATS_KEEP,)
            )
        return len(ids)

    # -- recurring --------------------------------------------------------------------

    def save_recurring(self, rec: RecurringJob, now: float) -> None:
        """Create or replace a recurring job definition."""
        with self.transaction() as conn:
            self.execute(
                conn,
                "INSERT INTO diquis_recurring (id, target, args, kwargs, cron, tz, queue, misfire,"
                " next_run_at, error, created_at, updated_at) VALUES"
                f" ({marks(12)}) ON CONFLICT (id) DO UPDATE SET target = excluded.target,"
                " args = excluded.args, kwargs = excluded.kwargs, cron = excluded.cron,"
                " tz = excluded.tz, queue = excluded.queue, misfire = excluded.misfire,"
                " next_run_at = excluded.next_run_at, error = NULL,"
                " updated_at = excluded.updated_at",
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
        """One recurring job definition, or None."""
        with self.transaction(write=False) as conn:
            row = self.execute(
                conn,
                f"SELECT {RECURRING_COLUMNS} FROM diquis_recurring WHERE id = ?",
                (recurring_id,),
            ).fetchone()
        return None if row is None else recurring_from_row(row)

    def list_recurring(self) -> list[RecurringJob]:
        """Every recurring job definition, by id."""
        with self.transaction(write=False) as conn:
            rows = self.execute(
                conn, f"SELECT {RECURRING_COLUMNS} FROM diquis_recurring ORDER BY id"
            ).fetchall()
        return [recurring_from_row(r) for r in rows]

    def remove_recurring(self, recurring_id: str) -> bool:
        """Delete a recurring job definition (its past jobs stay); whether it existed."""
        with self.transaction() as conn:
            cur = self.execute(conn, "DELETE FROM diquis_recurring WHERE id = ?", (recurring_id,))
            return bool(cur.rowcount)

    def fire_recurring(
        self, now: float, plan: RecurringPlan, only: str | None = None
    ) -> tuple[list[int], float | None]:
        """Create the jobs of due recurring jobs (or of ``only``, due or not); (ids, next due)."""
        created: list[int] = []
        with self.transaction() as conn:
            if only is not None:
                rows = self.execute(
                    conn,
                    f"SELECT {RECURRING_COLUMNS} FROM diquis_recurring WHERE id = ?"
                    f"{self.lock_for_update}",
                    (only,),
                ).fetchall()
                if not rows:
                    raise JobNotFoundError(f"recurring job {only!r} does not exist")
            else:
                rows = self.execute(
                    conn,
                    f"SELECT {RECURRING_COLUMNS} FROM diquis_recurring WHERE next_run_at <= ?"
                    f"{self.lock_skip_locked}",
                    (now,),
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
                    "UPDATE diquis_recurring SET next_run_at = ?, last_run_at = ?,"
                    " last_job_id = ?, error = ? WHERE id = ?",
                    (
                        rec.next_run_at if only is not None else next_run,
                        now if jobs else rec.last_run_at,
                        last_job,
                        error,
                        rec.id,
                    ),
                )
            nxt = self.execute(conn, "SELECT min(next_run_at) FROM diquis_recurring").fetchone()
        return created, (None if nxt[0] is None else float(nxt[0]))


def continuation_state(parent: State, on: str) -> State | None:
    """What an Awaiting continuation becomes once its parent is ``parent`` (None: keep waiting)."""
    if parent is State.SUCCEEDED:
        return State.ENQUEUED
    if parent is State.DELETED:
        return State.ENQUEUED if on == "any" else State.DELETED
    if parent is State.FAILED and on == "any":
        return State.ENQUEUED
    return None


class Waker(abc.ABC):
    """What an idle server awaits: returns when new work may have arrived, or on timeout."""

    @abc.abstractmethod
    async def wait(self, timeout: float) -> None:
        """Return as soon as work may be ready, or after ``timeout`` seconds."""

    @abc.abstractmethod
    def poke(self) -> None:
        """Wake the waiter now (a job was enqueued in this process); thread-safe."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the waker holds."""


__all__ = ["HistoryEntry", "Storage", "Waker", "continuation_state"]
