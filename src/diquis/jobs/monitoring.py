"""The monitoring API: what a dashboard may read about jobs, as plain records.

Every storage serves one (``storage.monitoring``); the dashboard reads nothing else.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from .model import Batch, Job, RecurringJob, ServerInfo
from .states import State

#: seconds per stored throughput counter (throughput buckets are multiples of it)
STATS_BUCKET = 3600

#: (bucket start epoch seconds, Succeeded or Failed, runs)
Throughput = tuple[float, State, int]


def check_bucket(bucket: int) -> None:
    """ValueError unless ``bucket`` is a whole number of stored counters."""
    if bucket < STATS_BUCKET or bucket % STATS_BUCKET:
        raise ValueError(f"bucket must be a multiple of {STATS_BUCKET} seconds, got {bucket}")


class MonitoringApi(abc.ABC):
    """Read-only queries over jobs, servers, recurring jobs and counters."""

    @abc.abstractmethod
    def get_job(self, job_id: int) -> Job | None:
        """The job with its tags and full history, or None."""

    @abc.abstractmethod
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
        """Jobs newest first with their tags, filtered (no history); ``search``: an id, or
        part of a target or tag; ``since``: created at or after this epoch time."""

    @abc.abstractmethod
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
        """How many jobs match the filters of :meth:`list_jobs`."""

    @abc.abstractmethod
    def state_counts(self) -> dict[State, int]:
        """How many jobs are in each state (every state present)."""

    @abc.abstractmethod
    def get_batch(self, batch_id: int) -> Batch | None:
        """A batch with its counts per job state, or None."""

    @abc.abstractmethod
    def list_batches(self, limit: int = 50, offset: int = 0) -> list[Batch]:
        """Batches, newest first."""

    @abc.abstractmethod
    def count_batches(self) -> int:
        """How many batches there are."""

    @abc.abstractmethod
    def batch_jobs(self, batch_id: int, limit: int = 50, offset: int = 0) -> list[Job]:
        """A batch's jobs, oldest first (no history)."""

    @abc.abstractmethod
    def children(self, job_id: int) -> list[Job]:
        """The continuations of a job, oldest first."""

    @abc.abstractmethod
    def running_on(self, server_id: str) -> list[Job]:
        """The jobs a server is processing now."""

    @abc.abstractmethod
    def list_servers(self) -> list[ServerInfo]:
        """Every registered server, oldest first."""

    @abc.abstractmethod
    def list_recurring(self) -> list[RecurringJob]:
        """Every recurring job definition, by id."""

    @abc.abstractmethod
    def throughput(self, since: float, bucket: int = STATS_BUCKET) -> list[Throughput]:
        """Succeeded and failed runs per ``bucket`` seconds (a multiple of an hour) since then."""

    def queue_counts(self, queues: Sequence[str] = ()) -> list[tuple[str, int]]:
        """Enqueued jobs per queue: ``queues``, those servers listen to and those holding jobs."""
        names = set(queues)
        for server in self.list_servers():
            names.update(server.queues)
        names.update(j.queue for j in self.list_jobs(state=State.ENQUEUED, limit=500))
        counts = ((q, self.count_jobs(state=State.ENQUEUED, queue=q)) for q in names)
        return sorted(counts, key=lambda item: (-item[1], item[0]))


def sum_throughput(rows: Sequence[tuple[float, State, int]], bucket: int) -> list[Throughput]:
    """Hourly counter rows summed into ``bucket``-second buckets, oldest first."""
    totals: dict[tuple[float, State], int] = {}
    for start, state, count in rows:
        key = (float(int(start) // bucket * bucket), State(state))
        totals[key] = totals.get(key, 0) + int(count)
    return [(start, state, n) for (start, state), n in sorted(totals.items())]


def stats_bucket(now: float) -> int:
    """The start of the hour ``now`` falls in (the stats table's key)."""
    return int(now // STATS_BUCKET * STATS_BUCKET)


__all__ = [
    "STATS_BUCKET",
    "MonitoringApi",
    "Throughput",
    "check_bucket",
    "stats_bucket",
    "sum_throughput",
]
