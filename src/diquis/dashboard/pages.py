"""The dashboard's pages: each is a view (what to show) rendered by its template (HTML).

Called in a thread (the views read the monitoring API, which blocks).
"""

from __future__ import annotations

from typing import Any

from ..jobs import JobEngine, State
from . import batch_views, views
from .layout import Context, Rendered
from .templates import batches as batches_t
from .templates import job, job_list
from .templates import overview as overview_t
from .templates import recurring as recurring_t
from .templates import retries as retries_t
from .templates import servers as servers_t

__all__ = [
    "Rendered", "batch_page", "batches", "job_page", "jobs_by_state", "nav_counts", "overview",
    "recurring", "retries", "servers", "stats",
]  # fmt: skip


def nav_counts(engine: JobEngine) -> dict[str, int]:
    """The counters the navigation shows."""
    return views.nav_counts(engine)


def stats(engine: JobEngine, now: float) -> dict[str, Any]:
    """The JSON the live counters read."""
    return views.stats(engine, now)


def overview(engine: JobEngine, ctx: Context, range_: str, dead_after: float) -> Rendered:
    """Counters, live and historic throughput, servers."""
    return overview_t.render(ctx, views.overview(engine, ctx.now, range_, dead_after))


def jobs_by_state(
    engine: JobEngine, ctx: Context, state: State, filters: views.JobFilters
) -> Rendered:
    """One state's jobs, newest first, filtered, searchable and paginated."""
    view = views.job_list(engine, state, filters, ctx.now, read_only=ctx.read_only)
    return job_list.render(ctx, view)


def retries(engine: JobEngine, ctx: Context, page_raw: str | None) -> Rendered:
    """Jobs that failed and wait for their next attempt."""
    return retries_t.render(ctx, views.retries(engine, page_raw, read_only=ctx.read_only))


def job_page(engine: JobEngine, ctx: Context, job_id: int) -> Rendered:
    """Everything about one job."""
    view = views.job(engine, job_id, read_only=ctx.read_only)
    return job.missing(job_id) if view is None else job.render(ctx, view)


def recurring(engine: JobEngine, ctx: Context) -> Rendered:
    """Recurring job definitions, their schedule and last run."""
    return recurring_t.render(ctx, views.recurring(engine))


def servers(engine: JobEngine, ctx: Context, dead_after: float) -> Rendered:
    """Job servers: heartbeat, queues, concurrency and what they run now."""
    return servers_t.render(ctx, views.servers(engine, ctx.now, dead_after, running=True))


def batches(engine: JobEngine, ctx: Context, page_raw: str | None) -> Rendered:
    """Batches: state, progress and counts."""
    return batches_t.render_list(ctx, batch_views.batch_list(engine, page_raw))


def batch_page(engine: JobEngine, ctx: Context, batch_id: int, page_raw: str | None) -> Rendered:
    """One batch: its jobs, progress and continuations."""
    view = batch_views.batch_detail(engine, batch_id, page_raw)
    return batches_t.missing(batch_id) if view is None else batches_t.render_batch(ctx, view)
