"""One state's list of jobs (the Enqueued list with its queues)."""

from __future__ import annotations

from collections.abc import Sequence

from ...jobs import Job, State
from ..layout import SLUG_OF, Context, Rendered, job_link, pager
from ..markup import Html, esc, join, tag, when
from ..views import PAGE_SIZES, RANGES, JobList
from .parts import bulk_buttons, job_rows, live_list
from .progress import progress_cell

STATE_HELP = {
    State.ENQUEUED: "Waiting in a queue for a free worker.",
    State.SCHEDULED: "Waiting for their time: delayed jobs and retries.",
    State.PROCESSING: "Running on a server now.",
    State.SUCCEEDED: "Finished without error; kept for a while, then expired.",
    State.FAILED: "Out of retries: they stay here until someone requeues or deletes them.",
    State.DELETED: "Deleted by hand or cancelled; kept for a while, then expired.",
    State.AWAITING: "Continuations waiting for their parent job to finish.",
}

#: each state's own columns: headers, and the cells of one job
COLUMNS: dict[State, list[str]] = {
    State.ENQUEUED: ["Queue", "Enqueued"],
    State.SCHEDULED: ["Queue", "Runs", "Reason"],
    State.PROCESSING: ["Server", "Started", "Progress"],
    State.SUCCEEDED: ["Finished", "Expires"],
    State.FAILED: ["Error", "Failed"],
    State.DELETED: ["Reason", "Deleted"],
    State.AWAITING: ["Parent", "Starts when", "Created"],
}


def _cells(ctx: Context, state: State, job: Job) -> Sequence[object]:
    now = ctx.now
    if state is State.ENQUEUED:
        return [tag("span", job.queue, class_="chip"), when(job.enqueued_at, now)]
    if state is State.SCHEDULED:
        return [
            tag("span", job.queue, class_="chip"),
            when(job.scheduled_at, now),
            tag("span", job.reason, class_="reason"),
        ]
    if state is State.PROCESSING:
        return [
            tag("span", job.server_id, class_="mono"),
            when(job.started_at, now),
            progress_cell(job),
        ]
    if state is State.SUCCEEDED:
        return [when(job.finished_at, now), when(job.expire_at, now)]
    if state is State.FAILED:
        return [
            tag("span", job.error or job.reason, class_="error-text"),
            when(job.finished_at, now),
        ]
    if state is State.DELETED:
        return [tag("span", job.reason, class_="reason"), when(job.finished_at, now)]
    return [
        job_link(ctx, job.parent_id),
        f"parent {'ends' if job.continuation_on == 'any' else 'succeeds'}",
        when(job.created_at, now),
    ]


def _queues(ctx: Context, queues: list[tuple[str, int]], chosen: str | None) -> Html:
    links = join(
        tag(
            "a",
            Html(f"<span>{esc(q)}</span>{tag('span', n, class_='count')}"),
            href=ctx.url("/jobs/enqueued", queue=q),
            class_="queue",
            aria_current="true" if q == chosen else None,
        )
        for q, n in queues
    )
    everything = tag(
        "a",
        "All queues",
        href=ctx.url("/jobs/enqueued"),
        class_="queue",
        aria_current="true" if chosen is None else None,
    )
    return Html(f'<nav class="queues" aria-label="Queues">{everything}{links}</nav>')


def _options(choices: Sequence[tuple[str, str]], chosen: str) -> Html:
    return join(
        tag("option", label, value=value, selected=value == chosen) for value, label in choices
    )


def filter_form(ctx: Context, view: JobList) -> Html:
    """Search (an id, part of a target or of a tag), queue, exact tag, time range, page size."""
    f = view.filters
    queues = _options([("", "All queues"), *((q, q) for q in view.queue_names)], f.queue or "")
    ranges = _options([("", "Any time"), *((k, v[0]) for k, v in RANGES.items())], f.range)
    sizes = _options([(str(n), str(n)) for n in PAGE_SIZES], str(f.size))
    clear = (
        tag("a", "Clear filters", href=ctx.url(ctx.path), class_="btn btn-quiet")
        if f.active
        else ""
    )
    return Html(
        f'<form class="filters" method="get" action="{esc(ctx.url(ctx.path))}" role="search" '
        'aria-label="Filter jobs">'
        '<label class="field field-grow" for="q">Search'
        f'<input id="q" type="search" name="q" value="{esc(f.query)}" '
        'placeholder="Job id, target, or part of a tag (tenant:ac)" autocomplete="off"></label>'
        f'<label class="field" for="f-queue">Queue<select id="f-queue" name="queue">{queues}'
        "</select></label>"
        '<label class="field" for="f-tag">Tag'
        f'<input id="f-tag" type="text" name="tag" value="{esc(f.tag or "")}" '
        'placeholder="tenant:acme" autocomplete="off"></label>'
        f'<label class="field" for="f-range">Created<select id="f-range" name="range">{ranges}'
        "</select></label>"
        f'<label class="field" for="f-size">Per page<select id="f-size" name="size">{sizes}'
        "</select></label>"
        f'<button class="btn" type="submit">Apply</button>{clear}</form>'
    )


def render(ctx: Context, view: JobList) -> Rendered:
    state = view.state
    empty = f"No {state.value.lower()} jobs" + (
        " match these filters." if view.filters.active else "."
    )
    listing = job_rows(
        ctx,
        COLUMNS[state],
        view.jobs,
        lambda job: _cells(ctx, state, job),
        selectable=view.selectable,
        empty=empty,
    )
    parts = [
        '<div class="page-head">',
        f"<h1>{esc(state.value)} jobs</h1>",
        tag("span", view.total, class_="total muted", data_total=""),
        "</div>",
        tag("p", STATE_HELP[state], class_="lead"),
    ]
    if view.queues is not None:
        parts.append(_queues(ctx, view.queues, view.queue))
    parts.append(filter_form(ctx, view))
    region = Html(
        (bulk_buttons(ctx, state) if view.selectable and view.jobs else "")
        + listing
        + pager(ctx, view.page, view.has_next, view.total, view.size, **view.filters.query_params())
    )
    parts.append(live_list(ctx, region))
    return Rendered(f"{state.value} jobs", Html("".join(parts)), SLUG_OF[state], live="list")
