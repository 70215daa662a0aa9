"""The job store port: writes and the worker protocol, one implementation per backend.

The engine and its servers talk to a :class:`Storage`; a dashboard reads its
:attr:`Storage.monitoring`. SQL backends implement it once over a connector
(:mod:`.sql`); :mod:`diquis.jobs.testing` keeps jobs in memory.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from ..model import (
    Batch,
    ClaimedJob,
    Job,
    NewJob,
    Outcome,
    ProgressUpdate,
    RecurringJob,
    StateChange,
)
from ..monitoring import MonitoringApi
from ..states import Move, State
from .connector import Waker

#: (recurring definition, now) -> (jobs to create, next run time, error text)
RecurringPlan = Callable[[RecurringJob, float], tuple[list[NewJob], float | None, str | None]]


class Storage(abc.ABC):
    """Where jobs live: every backend passes one contract suite (tests/jobs)."""

    #: the URL scheme(s) this backend serves, for messages
    name: str = "storage"
    #: how many group commits one event loop may have in flight at once (see enqueuer)
    group_writers: int = 1

    @property
    @abc.abstractmethod
    def monitoring(self) -> MonitoringApi:
        """The read-only queries a dashboard uses."""

    # -- life cycle -------------------------------------------------------------------

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the job tables; safe from many processes at once."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def driver_connection(self, connection: Any) -> Any:
        """The DB-API connection inside a caller's connection (e.g. a SQLAlchemy one)."""

    # -- writes -----------------------------------------------------------------------

    @abc.abstractmethod
    def create_job(self, job: NewJob, now: float, connection: Any = None) -> tuple[int, bool]:
        """Insert ``job`` (in the caller's transaction if given); (id, created?)."""

    def create_jobs(self, jobs: Sequence[NewJob], now: float) -> list[tuple[int, bool] | Exception]:
        """Insert ``jobs`` in as few commits as the store can (a group commit).

        Each entry is that job's (id, created?) or the error that job alone raised (a
        missing parent, a bad value); the others are stored regardless. If a commit
        fails, this raises and no job of that commit may be counted as stored. Here: one
        commit per job; SQL stores share one.
        """
        results: list[tuple[int, bool] | Exception] = []
        for job in jobs:
            try:
                results.append(self.create_job(job, now))
            except Exception as exc:
                results.append(exc)
        return results

    def create_jobs_nowait(
        self, jobs: Sequence[NewJob], now: float
    ) -> list[tuple[int, bool] | Exception] | None:
        """:meth:`create_jobs` if that waits for no lock nor network, else None (untouched).

        A group commit calls this on its event loop's thread. Here (a store in memory):
        always written.
        """
        return self.create_jobs(jobs, now)

    async def acreate_jobs(
        self, jobs: Sequence[NewJob], now: float
    ) -> list[tuple[int, bool] | Exception]:
        """:meth:`create_jobs` without blocking the event loop (here: in a thread)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.create_jobs, jobs, now)

    async def acreate_job(self, connection: Any, job: NewJob, now: float) -> tuple[int, bool]:
        """:meth:`create_job` in a caller's async transaction (PostgreSQL only)."""
        from ..errors import ConfigurationError

        raise ConfigurationError(
            f"an async connection= needs PostgreSQL storage; this engine uses {self.name}"
        )

    @abc.abstractmethod
    def get_job(self, job_id: int) -> Job | None:
        """The job with its tags and full history, or None."""

    @abc.abstractmethod
    def change_state(
        self, job_id: int, move: Move, now: float, reason: str, *, expire_at: float | None = None
    ) -> State:
        """Make ``move`` on a job if its state allows it (InvalidStateError if not); old state."""

    # -- progress -----------------------------------------------------------------------

    @abc.abstractmethod
    def save_progress(self, updates: Sequence[ProgressUpdate]) -> None:
        """Store what runs reported (progress, message, log lines), in one transaction."""

    # -- batches ------------------------------------------------------------------------

    @abc.abstractmethod
    def open_batch(
        self, now: float, parent_batch_id: int | None = None, on: str | None = None
    ) -> int:
        """Create an empty batch (a continuation of ``parent_batch_id`` if given); its id."""

    @abc.abstractmethod
    def add_to_batch(self, batch_id: int, jobs: Sequence[NewJob], now: float) -> list[int]:
        """Create ``jobs`` in the batch, all in one transaction (all or none); their ids."""

    @abc.abstractmethod
    def discard_batch(self, batch_id: int) -> None:
        """Forget a batch that never got a job or a continuation."""

    @abc.abstractmethod
    def cancel_batch(
        self, batch_id: int, now: float, reason: str, *, expire_at: float | None = None
    ) -> list[int]:
        """Cancel a batch: delete its unfinished jobs (running ones are cancelled); their ids."""

    @abc.abstractmethod
    def get_batch(self, batch_id: int) -> Batch | None:
        """The batch with its counts, or None."""

    # -- the worker protocol ------------------------------------------------------------

    @abc.abstractmethod
    def claim(
        self,
        server_id: str,
        queues: Sequence[str],
        limit: int,
        now: float,
        gated_limit: int | None = None,
    ) -> list[ClaimedJob]:
        """Move up to ``limit`` Enqueued jobs (queues in priority order) to Processing.

        Jobs with a mutex, a limit or a rate limit start only when their rules allow
        (:func:`diquis.jobs.concurrency.pick`), the others stay Enqueued; a queue holding
        partitioned jobs is taken round-robin across partitions. A queue with such jobs
        or a queue limit (a careful queue) is claimed from only while fewer than
        ``gated_limit`` jobs (default ``limit``) are claimed in this call: a server that
        claims ahead of its free slots passes its free slots here, so every careful job
        starts at once and the rules see only runs that really run.
        """

    def finish_and_claim(
        self,
        server_id: str,
        outcomes: Sequence[Outcome],
        queues: Sequence[str],
        limit: int,
        now: float,
        gated_limit: int | None = None,
    ) -> tuple[int, list[ClaimedJob]]:
        """:meth:`finish` then :meth:`claim`, in one transaction where the store can.

        One commit (one fsync) per server round trip instead of two; the claim sees the
        slots, mutexes and continuations the finish just freed. (written, claimed).
        """
        written = self.finish(server_id, outcomes, now) if outcomes else 0
        claimed = self.claim(server_id, queues, limit, now, gated_limit) if limit > 0 else []
        return written, claimed

    @abc.abstractmethod
    def set_queue_limit(self, queue: str, n: int | None) -> None:
        """Run at most ``n`` jobs of ``queue`` at once across all servers (None: no limit)."""

    @abc.abstractmethod
    def finish(self, server_id: str, outcomes: Sequence[Outcome], now: float) -> int:
        """Write how runs ended, in one transaction; runs no longer owned are ignored."""

    @abc.abstractmethod
    def release(
        self, server_id: str, jobs: Sequence[tuple[int, int]], now: float, reason: str
    ) -> int:
        """Hand (job, attempt) runs back to their queue (a graceful stop); how many."""

    @abc.abstractmethod
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

    @abc.abstractmethod
    def heartbeat(
        self, server_id: str, now: float, running: Sequence[tuple[int, int]]
    ) -> tuple[bool, list[tuple[int, int]]]:
        """Record that a server lives; (was it still registered?, (job, attempt) runs it lost).

        A run is lost once its job is no longer Processing on this server at that attempt:
        deleted, rescued by another server, or requeued and claimed again (a new attempt).
        """

    @abc.abstractmethod
    def remove_server(self, server_id: str) -> None:
        """Forget a server that stopped cleanly."""

    @abc.abstractmethod
    def enqueue_due(self, now: float, limit: int = 1000) -> tuple[int, float | None]:
        """Enqueue Scheduled jobs whose time has come; (how many, next due time)."""

    def stager_due(self, now: float) -> tuple[bool, float | None, float | None]:
        """What the stager reads before it writes anything: (whether anything is due now —
        a Scheduled job, a recurring job, or an Awaiting job whose parent has finished —,
        the next scheduled time, the next recurring time). A store that cannot tell
        cheaply answers (True, None, None): stage every time."""
        return True, None, None

    @abc.abstractmethod
    def rescue(self, now: float, server_timeout: float) -> list[int]:
        """Forget servers silent for ``server_timeout`` and requeue their jobs; job ids."""

    @abc.abstractmethod
    def expire(self, now: float, limit: int = 1000) -> int:
        """Delete finished jobs whose expiry has passed, with their history; how many."""

    # -- recurring ----------------------------------------------------------------------

    @abc.abstractmethod
    def save_recurring(self, rec: RecurringJob, now: float) -> None:
        """Create or replace a recurring job definition."""

    @abc.abstractmethod
    def get_recurring(self, recurring_id: str) -> RecurringJob | None:
        """One recurring job definition, or None."""

    def list_recurring(self) -> list[RecurringJob]:
        """Every recurring job definition, by id."""
        return self.monitoring.list_recurring()

    @abc.abstractmethod
    def remove_recurring(self, recurring_id: str) -> bool:
        """Delete a recurring job definition (its past jobs stay); whether it existed."""

    @abc.abstractmethod
    def fire_recurring(
        self, now: float, plan: RecurringPlan, only: str | None = None
    ) -> tuple[list[int], float | None]:
        """Create the jobs of due recurring jobs (or of ``only``, due or not); (ids, next due)."""

    # -- signals ------------------------------------------------------------------------

    @abc.abstractmethod
    def state_changes(self, poll_interval: float = 0.05) -> AsyncIterator[StateChange]:
        """Every state change from any process, as it commits (until cancelled)."""

    @abc.abstractmethod
    def waker(self, queues: Sequence[str]) -> Waker:
        """An object a server awaits while idle; it returns when new work may be there."""


__all__ = ["RecurringPlan", "Storage"]
