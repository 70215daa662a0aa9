"""The dashboard's views: what each page shows, read from the monitoring API and decided here.

Each view is a plain function over the engine's monitoring API (blocking; called in a
thread) returning a plain record; the matching module in ``templates/`` turns it into
HTML and decides nothing. Views never see a request; templates never query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..jobs import Job, JobEngine, RecurringJob, ServerInfo, State, StateRecord
from ..jobs.monitoring import Throughput
from ..jobs.states import DELETABLE, REQUEUEABLE

PAGE_SIZE = 50
PAGE_SIZES = (20, 50, 100, 200)
#: the job lists' time ranges: created within the last ... (seconds)
RANGES = {"1h": ("Last hour", 3600), "24h": ("Last 24 hours", 86400), "7d": ("Last 7 days", 604800)}


def nav_counts(engine: JobEngine) -> dict[str, int]:
    """The counters the navigation shows."""
    monitoring = engine.monitoring
    counts = {state.value: n for state, n in monitoring.state_counts().items()}
    counts["retries"] = monitoring.count_jobs(state=State.SCHEDULED, retrying=True)
    counts["recurring"] = len(monitoring.list_recurring())
    counts["servers"] = len(monitoring.list_servers())
    return counts


def stats(engine: JobEngine, now: float) -> dict[str, Any]:
    """The JSON the live counters read."""
    return {"counts": nav_counts(engine), "at": now}


def page_number(raw: str | None) -> int:
    """A 1-based page number from the query string (bad input: page 1)."""
    try:
        return max(1, min(int(raw or "1"), 100_000))
    except ValueError:
        return 1


def is_dead(server: ServerInfo, now: dt.datetime, dead_after: float) -> bool:
    """Whether a server has not heart-beaten for ``dead_after`` seconds."""
    return (now - server.heartbeat_at).total_seconds() > dead_after


# -- servers and overview -----------------------------------------------------------


@dataclass(frozen=True)
class ServerRow:
    server: ServerInfo
    dead: bool
    #: what it runs now (None: not asked for)
    running: list[Job] | None = None


@dataclass(frozen=True)
class Servers:
    rows: list[ServerRow]
    dead_after: float
    #: whether each row says what the server runs now
    with_running: bool

    @property
    def dead(self) -> int:
        return sum(1 for row in self.rows if row.dead)


def servers(engine: JobEngine, now: dt.datetime, dead_after: float, *, running: bool) -> Servers:
    """Job servers, dead ones marked, with their running jobs if ``running``."""
    monitoring = engine.monitoring
    return Servers(
        [
            ServerRow(
                s,
                is_dead(s, now, dead_after),
                monitoring.running_on(s.id) if running else None,
            )
            for s in monitoring.list_servers()
        ],
        dead_after,
        running,
    )


@dataclass(frozen=True)
class Overview:
    range: str
    hours: int
    #: start of the first hour the history chart shows (epoch seconds)
    start: float
    throughput: list[Throughput]
    servers: Servers


def overview(engine: JobEngine, now: dt.datetime, range_: str, dead_after: float) -> Overview:
    """Throughput for the last 24 hours (or 7 days) and the servers."""
    hours = 24 * 7 if range_ == "7d" else 24
    start = (now.timestamp() // 3600 - hours + 1) * 3600
    throughput = engine.monitoring.throughput(start, 3600)
    return Overview(
        range_, hours, start, throughput, servers(engine, now, dead_after, running=False)
    )


# -- job lists ----------------------------------------------------------------------


@dataclass(frozen=True)
class JobFilters:
    """What a job list is narrowed to: the query string's ``q``, ``tag``, ``queue``,
    ``range``, ``size`` and ``page`` (bad values: the defaults)."""

    query: str = ""
    tag: str | None = None
    queue: str | None = None
    range: str = ""
    size: int = PAGE_SIZE
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> JobFilters:
        """Filters from query parameters."""
        try:
            size = int(params.get("size") or PAGE_SIZE)
        except ValueError:
            size = PAGE_SIZE
        range_ = params.get("range") or ""
        return cls(
            query=(params.get("q") or "")[:200],
            tag=(params.get("tag") or "").strip()[:200] or None,
            queue=(params.get("queue") or "").strip()[:200] or None,
            range=range_ if range_ in RANGES else "",
            size=size if size in PAGE_SIZES else PAGE_SIZE,
            page=page_number(params.get("page")),
        )

    @property
    def active(self) -> bool:
        """Whether anything narrows the list."""
        return bool(self.query.strip() or self.tag or self.queue or self.range)

    def query_params(self) -> dict[str, object]:
        """The filters as query parameters (defaults left out), for links that keep them."""
        return {
            "q": self.query.strip() or None,
            "tag": self.tag,
            "queue": self.queue,
            "range": self.range or None,
            "size": self.size if self.size != PAGE_SIZE else None,
        }


@dataclass(frozen=True)
class JobList:
    state: State
    jobs: list[Job]
    total: int
    page: int
    has_next: bool
    query: str
    #: the search actually run (the query stripped; None for none)
    search: str | None
    queue: str | None
    selectable: bool
    #: (queue, enqueued jobs) for the Enqueued list, busiest first
    queues: list[tuple[str, int]] | None = None
    filters: JobFilters = field(default_factory=JobFilters)
    #: the queues the queue filter offers
    queue_names: list[str] = field(default_factory=list)
    size: int = PAGE_SIZE


def _queue_names(engine: JobEngine) -> set[str]:
    monitoring = engine.monitoring
    names = {engine.default_queue}
    for server in monitoring.list_servers():
        names.update(server.queues)
    names.update(j.queue for j in monitoring.list_jobs(state=State.ENQUEUED, limit=500))
    return names


def _queues(engine: JobEngine, names: set[str]) -> list[tuple[str, int]]:
    monitoring = engine.monitoring
    return sorted(
        ((q, monitoring.count_jobs(state=State.ENQUEUED, queue=q)) for q in names),
        key=lambda item: (-item[1], item[0]),
    )


def job_list(
    engine: JobEngine,
    state: State,
    filters: JobFilters,
    now: dt.datetime,
    *,
    read_only: bool,
) -> JobList:
    """One state's jobs, newest first, filtered, searched (ids, target or tag parts) and
    paginated."""
    monitoring = engine.monitoring
    search = filters.query.strip() or None
    since = now.timestamp() - RANGES[filters.range][1] if filters.range else None
    size, page = filters.size, filters.page
    jobs = monitoring.list_jobs(
        state=state,
        queue=filters.queue,
        tag=filters.tag,
        search=search,
        since=since,
        limit=size + 1,
        offset=(page - 1) * size,
    )
    names = _queue_names(engine)
    if filters.queue:
        names.add(filters.queue)
    return JobList(
        state=state,
        jobs=jobs[:size],
        total=monitoring.count_jobs(
            state=state, queue=filters.queue, tag=filters.tag, search=search, since=since
        ),
        page=page,
        has_next=len(jobs) > size,
        query=filters.query,
        search=search,
        queue=filters.queue,
        selectable=not read_only and (state in REQUEUEABLE or state in DELETABLE),
        queues=_queues(engine, names) if state is State.ENQUEUED else None,
        filters=filters,
        queue_names=sorted(names),
        size=size,
    )


def retries(engine: JobEngine, page_raw: str | None, *, read_only: bool) -> JobList:
    """Jobs that failed and wait for their next attempt."""
    page = page_number(page_raw)
    monitoring = engine.monitoring
    jobs = monitoring.list_jobs(
        state=State.SCHEDULED, retrying=True, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    return JobList(
        state=State.SCHEDULED,
        jobs=jobs[:PAGE_SIZE],
        total=monitoring.count_jobs(state=State.SCHEDULED, retrying=True),
        page=page,
        has_next=len(jobs) > PAGE_SIZE,
        query="",
        search=None,
        queue=None,
        selectable=not read_only,
    )


# -- one job ------------------------------------------------------------------------


def _last(history: Sequence[StateRecord], *states: State) -> StateRecord | None:
    for record in reversed(history):
        if record.state in states:
            return record
    return None


@dataclass(frozen=True)
class JobDetail:
    job: Job
    children: list[Job]
    #: the last Processing record (its latency), the last finish (its duration)
    processing: StateRecord | None
    finished: StateRecord | None
    #: the failure to show, with its panel's title (None: no exception panel)
    failure: StateRecord | None
    failure_title: str
    #: labels of the buttons offered (None: not offered)
    requeue: str | None
    delete: str | None
    #: jobs whose changes refresh this page
    related: list[int]


def job(engine: JobEngine, job_id: int, *, read_only: bool) -> JobDetail | None:
    """Everything about one job (None: it does not exist or has expired)."""
    monitoring = engine.monitoring
    found = monitoring.get_job(job_id)
    if found is None:
        return None
    children = monitoring.children(found.id)
    failure = _last(found.history, State.FAILED)
    if found.state not in (State.FAILED, State.SCHEDULED, State.ENQUEUED):
        failure = None
    requeue = delete = None
    if not read_only and found.state in REQUEUEABLE:
        again = found.state in (State.FAILED, State.SUCCEEDED, State.DELETED)
        requeue = "Requeue" if again else "Enqueue now"
    if not read_only and found.state in DELETABLE:
        delete = "Cancel and delete" if found.state is State.PROCESSING else "Delete"
    return JobDetail(
        job=found,
        children=children,
        processing=_last(found.history, State.PROCESSING),
        finished=_last(found.history, State.SUCCEEDED, State.FAILED),
        failure=failure,
        failure_title="Exception" if found.state is State.FAILED else "Last exception",
        requeue=requeue,
        delete=delete,
        related=[i for i in [found.id, found.parent_id, *(c.id for c in children)] if i],
    )


# -- recurring ----------------------------------------------------------------------


@dataclass(frozen=True)
class RecurringRow:
    definition: RecurringJob
    #: the state of the job it last created (None: never ran, or that job expired)
    last_state: State | None


def recurring(engine: JobEngine) -> list[RecurringRow]:
    """Recurring job definitions with the state of their last job."""
    monitoring = engine.monitoring
    rows = []
    for rec in monitoring.list_recurring():
        last = monitoring.get_job(rec.last_job_id) if rec.last_job_id else None
        rows.append(RecurringRow(rec, last.state if last else None))
    return rows
