"""Jobs that failed and wait for their next attempt."""

from __future__ import annotations

from ...jobs import State
from ..layout import Context, Rendered, pager
from ..markup import Html, tag, when
from ..views import PAGE_SIZE, JobList
from .parts import bulk_buttons, job_rows, live_list


def render(ctx: Context, view: JobList) -> Rendered:
    listing = job_rows(
        ctx,
        ["Retry", "Next attempt", "Last error"],
        view.jobs,
        lambda job: [
            tag("span", job.retry_count, class_="num"),
            when(job.scheduled_at, ctx.now),
            tag("span", job.error, class_="error-text"),
        ],
        selectable=view.selectable,
        empty="No job is waiting for a retry.",
    )
    region = Html(
        (bulk_buttons(ctx, State.SCHEDULED) if view.selectable and view.jobs else "")
        + listing
        + pager(ctx, view.page, view.has_next, view.total, PAGE_SIZE)
    )
    body = Html(
        '<div class="page-head"><h1>Retries</h1>'
        f"{tag('span', view.total, class_='total muted')}</div>"
        '<p class="lead">Jobs that failed and are scheduled to run again with back-off.</p>'
        + live_list(ctx, region)
    )
    return Rendered("Retries", body, "retries", live="list")
