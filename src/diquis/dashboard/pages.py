"""The dashboard's pages: each reads storage (blocking; called in a thread) and renders HTML."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..jobs import Job, JobEngine, RecurringJob, ServerInfo, State, StateRecord
from ..jobs.model import to_datetime
from ..jobs.states import DELETABLE, REQUEUEABLE
from .charts import history_chart, live_chart
from .layout import (
    SELECT_ALL,
    SLUG_OF,
    STATE_SLUGS,
    Context,
    action_button,
    action_form,
    badge,
    job_link,
    pager,
    select_box,
    table,
    target_cell,
)
from .markup import Html, esc, join, milliseconds, pretty_json, tag, utc_text, when

PAGE_SIZE = 50

STATE_HELP = {
    State.ENQUEUED: "Waiting in a queue for a free worker.",
    State.SCHEDULED: "Waiting for their time: delayed jobs and retries.",
    State.PROCESSING: "Running on a server now.",
    State.SUCCEEDED: "Finished without error; kept for a while, then expired.",
    State.FAILED: "Out of retries: they stay here until someone requeues or deletes them.",
    State.DELETED: "Deleted by hand or cancelled; kept for a while, then expired.",
    State.AWAITING: "Continuations waiting for their parent job to finish.",
}


@dataclass(frozen=True)
class Rendered:
    """A page's title, body and where it sits in the navigation."""

    title: str
    body: Html
    current: str
    live: str = "page"
    status: int = 200


def nav_counts(engine: JobEngine) -> dict[str, int]:
    """The counters the navigation shows."""
    storage = engine.monitoring
    counts = {state.value: n for state, n in storage.state_counts().items()}
    counts["retries"] = storage.count_jobs(state=State.SCHEDULED, retrying=True)
    counts["recurring"] = len(storage.list_recurring())
    counts["servers"] = len(storage.list_servers())
    return counts


def is_dead(server: ServerInfo, now: dt.datetime, dead_after: float) -> bool:
    """Whether a server has not heart-beaten for ``dead_after`` seconds."""
    return (now - server.heartbeat_at).total_seconds() > dead_after


# -- overview ------------------------------------------------------------------------


def overview(engine: JobEngine, ctx: Context, range_: str, dead_after: float) -> Rendered:
    """Counters, live and historic throughput, servers."""
    cards = join(
        tag(
            "a",
            Html(
                f'<span class="card-count" data-count="{esc(state.value)}">'
                f"{esc(ctx.counts.get(state.value, 0))}</span>"
                f'<span class="card-label">{esc(state.value)}</span>'
            ),
            href=ctx.url(f"/jobs/{slug}"),
            class_=f"card card-{slug}",
        )
        for slug, state in STATE_SLUGS.items()
    )
    hours = 24 * 7 if range_ == "7d" else 24
    now_epoch = ctx.now.timestamp()
    start = (now_epoch // 3600 - hours + 1) * 3600
    stats = engine.monitoring.throughput(start, 3600)
    chart = history_chart(stats, start=start, hours=hours)
    tabs = join(
        tag(
            "a",
            label,
            href=ctx.url("/", range=key),
            class_="tab",
            aria_current="true" if key == range_ else None,
        )
        for key, label in (("24h", "24 hours"), ("7d", "7 days"))
    )
    servers = engine.monitoring.list_servers()
    body = Html(
        '<div class="page-head"><h1>Overview</h1></div>'
        f'<section class="cards" aria-label="Jobs per state">{cards}</section>'
        '<section class="panel"><div class="panel-head"><h2>Live throughput</h2>'
        '<span class="legend"><span class="key key-ok"></span>Succeeded'
        '<span class="key key-fail"></span>Failed · per second, last 60 s</span></div>'
        f"{live_chart()}</section>"
        '<section class="panel"><div class="panel-head"><h2>History</h2>'
        f'<nav class="tabs" aria-label="History range">{tabs}</nav></div>{chart}</section>'
        '<section class="panel"><div class="panel-head"><h2>Servers</h2>'
        f'<a href="{esc(ctx.url("/servers"))}">All servers →</a></div>'
        f"{servers_table(engine, ctx, servers, dead_after, running=False)}</section>"
    )
    return Rendered("Overview", body, "overview", live="overview")


# -- job lists -----------------------------------------------------------------------


def page_number(raw: str | None) -> int:
    """A 1-based page number from the query string (bad input: page 1)."""
    try:
        return max(1, min(int(raw or "1"), 100_000))
    except ValueError:
        return 1


def _state_columns(ctx: Context, state: State, job: Job) -> tuple[list[str], list[object]]:
    now = ctx.now
    if state is State.ENQUEUED:
        return ["Queue", "Enqueued"], [
            tag("span", job.queue, class_="chip"),
            when(job.enqueued_at, now),
        ]
    if state is State.SCHEDULED:
        return ["Queue", "Runs", "Reason"], [
            tag("span", job.queue, class_="chip"),
            when(job.scheduled_at, now),
            tag("span", job.reason, class_="reason"),
        ]
    if state is State.PROCESSING:
        return ["Server", "Started"], [
            tag("span", job.server_id, class_="mono"),
            when(job.started_at, now),
        ]
    if state is State.SUCCEEDED:
        return ["Finished", "Expires"], [when(job.finished_at, now), when(job.expire_at, now)]
    if state is State.FAILED:
        return ["Error", "Failed"], [
            tag("span", job.error or job.reason, class_="error-text"),
            when(job.finished_at, now),
        ]
    if state is State.DELETED:
        return ["Reason", "Deleted"], [
            tag("span", job.reason, class_="reason"),
            when(job.finished_at, now),
        ]
    return ["Parent", "Starts when", "Created"], [
        job_link(ctx, job.parent_id),
        f"parent {'ends' if job.continuation_on == 'any' else 'succeeds'}",
        when(job.created_at, now),
    ]


def bulk_buttons(ctx: Context, state: State | None) -> Html:
    """Requeue / delete buttons for the selected rows (none in read-only mode)."""
    if ctx.read_only:
        return Html("")
    buttons: list[Html] = []
    if state is None or state in REQUEUEABLE:
        label = "Requeue selected" if state is State.FAILED else "Enqueue selected now"
        buttons.append(action_button(ctx, "requeue", label))
    if state is None or state in DELETABLE:
        buttons.append(
            action_button(
                ctx,
                "delete",
                "Delete selected",
                danger=True,
                confirm="Delete the selected jobs? Running ones are cancelled.",
            )
        )
    return Html('<div class="bulk">' + "".join(buttons) + "</div>")


def search_form(ctx: Context, query: str, extra: dict[str, str] | None = None) -> Html:
    """The search box: a job id, part of a target, or an exact tag."""
    hidden = join(
        tag("input", type="hidden", name=k, value=v) for k, v in (extra or {}).items() if v
    )
    return Html(
        f'<form class="search" method="get" action="{esc(ctx.url(ctx.path))}" role="search">'
        f"{hidden}"
        '<label class="visually-hidden" for="q">Search jobs</label>'
        f'<input id="q" type="search" name="q" value="{esc(query)}" '
        'placeholder="Job id, target or tag (tenant:acme)" autocomplete="off">'
        '<button class="btn" type="submit">Search</button>'
        + (
            tag("a", "Clear", href=ctx.url(ctx.path, **(extra or {})), class_="btn btn-quiet")
            if query
            else ""
        )
        + "</form>"
    )


def job_rows_table(
    ctx: Context, state: State, jobs: Sequence[Job], *, selectable: bool, empty: str
) -> Html:
    """The rows of a state's list."""
    rows: list[list[object]] = []
    headers: list[str | Html] = []
    for job in jobs:
        extra_head, extra = _state_columns(ctx, state, job)
        headers = [SELECT_ALL] if selectable else []
        headers += ["Id", "Job", *extra_head]
        row: list[object] = [select_box(job.id, f"Select job {job.id}")] if selectable else []
        row += [job_link(ctx, job.id), target_cell(ctx, job), *extra]
        rows.append(row)
    return table(headers, rows, empty=empty, css="jobs")


def queues_summary(engine: JobEngine, ctx: Context, chosen: str | None) -> Html:
    """Enqueued jobs per queue (queues servers listen to, plus those holding jobs)."""
    storage = engine.monitoring
    names = {engine.default_queue}
    for server in storage.list_servers():
        names.update(server.queues)
    names.update(j.queue for j in storage.list_jobs(state=State.ENQUEUED, limit=500))
    counts = sorted(
        ((q, storage.count_jobs(state=State.ENQUEUED, queue=q)) for q in names),
        key=lambda item: (-item[1], item[0]),
    )
    links = join(
        tag(
            "a",
            Html(f"<span>{esc(q)}</span>{tag('span', n, class_='count')}"),
            href=ctx.url("/jobs/enqueued", queue=q),
            class_="queue",
            aria_current="true" if q == chosen else None,
        )
        for q, n in counts
    )
    everything = tag(
        "a",
        "All queues",
        href=ctx.url("/jobs/enqueued"),
        class_="queue",
        aria_current="true" if chosen is None else None,
    )
    return Html(f'<nav class="queues" aria-label="Queues">{everything}{links}</nav>')


def jobs_by_state(
    engine: JobEngine,
    ctx: Context,
    state: State,
    query: str,
    page_raw: str | None,
    queue: str | None,
) -> Rendered:
    """One state's jobs, newest first, searchable and paginated."""
    page_no = page_number(page_raw)
    storage = engine.monitoring
    search = query.strip() or None
    jobs = storage.list_jobs(
        state=state,
        queue=queue,
        search=search,
        limit=PAGE_SIZE + 1,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    total = storage.count_jobs(state=state, queue=queue, search=search)
    selectable = not ctx.read_only and (state in REQUEUEABLE or state in DELETABLE)
    empty = f"No {state.value.lower()} jobs" + (f" matching “{query}”." if search else ".")
    listing = job_rows_table(ctx, state, jobs[:PAGE_SIZE], selectable=selectable, empty=empty)
    parts = [
        '<div class="page-head">',
        f"<h1>{esc(state.value)} jobs</h1>",
        tag("span", total, class_="total muted"),
        "</div>",
        tag("p", STATE_HELP[state], class_="lead"),
    ]
    if state is State.ENQUEUED:
        parts.append(queues_summary(engine, ctx, queue))
    parts.append(search_form(ctx, query, {"queue": queue or ""}))
    region = Html(
        (bulk_buttons(ctx, state) if selectable and jobs else "")
        + listing
        + pager(ctx, page_no, len(jobs) > PAGE_SIZE, total, PAGE_SIZE, q=search, queue=queue)
    )
    parts.append(
        tag(
            "div",
            action_form(ctx, region, css="bulk-form"),
            class_="live-region",
            data_refresh="list",
        )
    )
    return Rendered(f"{state.value} jobs", Html("".join(parts)), SLUG_OF[state], live="list")


def retries(engine: JobEngine, ctx: Context, page_raw: str | None) -> Rendered:
    """Jobs that failed and wait for their next attempt."""
    page_no = page_number(page_raw)
    storage = engine.monitoring
    jobs = storage.list_jobs(
        state=State.SCHEDULED, retrying=True, limit=PAGE_SIZE + 1, offset=(page_no - 1) * PAGE_SIZE
    )
    total = storage.count_jobs(state=State.SCHEDULED, retrying=True)
    selectable = not ctx.read_only
    rows = []
    for job in jobs[:PAGE_SIZE]:
        row: list[object] = [select_box(job.id, f"Select job {job.id}")] if selectable else []
        row += [
            job_link(ctx, job.id),
            target_cell(ctx, job),
            tag("span", job.retry_count, class_="num"),
            when(job.scheduled_at, ctx.now),
            tag("span", job.error, class_="error-text"),
        ]
        rows.append(row)
    headers: list[str | Html] = [SELECT_ALL] if selectable else []
    headers += ["Id", "Job", "Retry", "Next attempt", "Last error"]
    listing = table(headers, rows, empty="No job is waiting for a retry.", css="jobs")
    region = Html(
        (bulk_buttons(ctx, State.SCHEDULED) if selectable and rows else "")
        + listing
        + pager(ctx, page_no, len(jobs) > PAGE_SIZE, total, PAGE_SIZE)
    )
    body = Html(
        '<div class="page-head"><h1>Retries</h1>'
        f"{tag('span', total, class_='total muted')}</div>"
        '<p class="lead">Jobs that failed and are scheduled to run again with back-off.</p>'
        + tag(
            "div",
            action_form(ctx, region, css="bulk-form"),
            class_="live-region",
            data_refresh="list",
        )
    )
    return Rendered("Retries", body, "retries", live="list")


# -- one job -------------------------------------------------------------------------


def _last(history: Sequence[StateRecord], *states: State) -> StateRecord | None:
    for record in reversed(history):
        if record.state in states:
            return record
    return None


def panel(title: str, content: Html) -> Html:
    """A titled white box."""
    return Html(
        f'<section class="panel"><div class="panel-head"><h2>{esc(title)}</h2></div>'
        f"{content}</section>"
    )


def _definition(items: Sequence[tuple[str, object]]) -> Html:
    return Html(
        '<dl class="facts">'
        + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
        + "</dl>"
    )


def _exception_block(record: StateRecord, title: str) -> Html:
    data = record.data
    kind = data.get("exception_type") or "Exception"
    message = data.get("exception_message") or record.reason or ""
    trace = data.get("stack_trace") or ""
    return Html(
        '<section class="panel exception" aria-labelledby="exception-title">'
        f'<div class="panel-head"><h2 id="exception-title">{esc(title)}</h2></div>'
        f'<p class="exc-type mono">{esc(kind)}</p>'
        f'<p class="exc-message">{esc(message)}</p>'
        + (f'<pre class="stack" tabindex="0">{esc(trace)}</pre>' if trace else "")
        + "</section>"
    )


def _history(ctx: Context, history: Sequence[StateRecord]) -> Html:
    items = []
    for record in reversed(history):
        details: list[str] = []
        if "latency_ms" in record.data:
            details.append(f"latency {milliseconds(record.data['latency_ms'])}")
        if "duration_ms" in record.data:
            details.append(f"duration {milliseconds(record.data['duration_ms'])}")
        if record.server_id:
            details.append(f"server {record.server_id}")
        trace = ""
        if record.data.get("stack_trace"):
            trace = (
                "<details><summary>Stack trace</summary>"
                f'<pre class="stack" tabindex="0">{esc(record.data["stack_trace"])}</pre></details>'
            )
        items.append(
            f'<li class="event event-{esc(record.state.value.lower())}">'
            f'<div class="event-head">{badge(record.state)}'
            f"{when(record.at, ctx.now)}"
            f'<span class="muted">{esc(utc_text(record.at))}</span></div>'
            + (tag("p", record.reason, class_="reason") if record.reason else "")
            + (tag("p", " · ".join(details), class_="muted small") if details else "")
            + trace
            + "</li>"
        )
    return Html('<ol class="timeline">' + "".join(items) + "</ol>")


def job_page(engine: JobEngine, ctx: Context, job_id: int) -> Rendered:
    """Everything about one job."""
    storage = engine.monitoring
    job = storage.get_job(job_id)
    if job is None:
        body = Html(
            f"<h1>Job #{esc(job_id)}</h1>"
            '<p class="empty">This job does not exist (or has expired).</p>'
        )
        return Rendered(f"Job #{job_id}", body, "", status=404)
    children = storage.children(job.id)
    processing = _last(job.history, State.PROCESSING)
    finished = _last(job.history, State.SUCCEEDED, State.FAILED)
    failure = _last(job.history, State.FAILED)
    timings: list[tuple[str, object]] = [("Created", when(job.created_at, ctx.now))]
    if processing is not None and "latency_ms" in processing.data:
        timings.append(("Latency", milliseconds(processing.data["latency_ms"])))
    if finished is not None and "duration_ms" in finished.data:
        timings.append(("Duration", milliseconds(finished.data["duration_ms"])))
    if job.started_at is not None:
        timings.append(("Started", when(job.started_at, ctx.now)))
    if job.finished_at is not None:
        timings.append(("Finished", when(job.finished_at, ctx.now)))
    if job.scheduled_at is not None:
        timings.append(("Scheduled for", when(job.scheduled_at, ctx.now)))
    if job.expire_at is not None:
        timings.append(("Expires", when(job.expire_at, ctx.now)))
    tags = (
        join(
            tag("a", t, href=ctx.url(f"/jobs/{SLUG_OF[job.state]}", q=t), class_="chip")
            for t in job.tags
        )
        if job.tags
        else Html('<span class="muted">—</span>')
    )
    facts: list[tuple[str, object]] = [
        ("State", badge(job.state)),
        ("Reason", job.reason or "—"),
        ("Queue", tag("span", job.queue, class_="chip")),
        ("Tags", tags),
        ("Unique key", tag("span", job.unique_key, class_="mono") if job.unique_key else "—"),
        ("Retries", job.retry_count),
        ("Attempt", job.attempt),
        ("Server", tag("span", job.server_id, class_="mono") if job.server_id else "—"),
    ]
    if job.recurring_id:
        facts.append(("Recurring job", tag("a", job.recurring_id, href=ctx.url("/recurring"))))
    if job.parent_id is not None:
        on = "ends (any way)" if job.continuation_on == "any" else "succeeds"
        facts.append(("Parent", Html(f"{job_link(ctx, job.parent_id)} — starts when it {esc(on)}")))
    buttons: list[Html] = []
    if not ctx.read_only:
        if job.state in REQUEUEABLE:
            label = (
                "Requeue"
                if job.state in (State.FAILED, State.SUCCEEDED, State.DELETED)
                else "Enqueue now"
            )
            buttons.append(action_button(ctx, "requeue", label, value=job.id))
        if job.state in DELETABLE:
            label = "Cancel and delete" if job.state is State.PROCESSING else "Delete"
            buttons.append(
                action_button(
                    ctx,
                    "delete",
                    label,
                    value=job.id,
                    danger=True,
                    confirm=f"{label} job #{job.id}?",
                )
            )
    actions = action_form(ctx, Html("".join(buttons))) if buttons else Html("")
    arguments = pretty_json({"args": job.args, "kwargs": job.kwargs} if job.kwargs else job.args)
    sections = [
        '<div class="page-head job-head">',
        f'<h1>Job <span class="mono">#{esc(job.id)}</span></h1>',
        badge(job.state),
        actions,
        "</div>",
        tag("p", job.target, class_="target-title mono"),
    ]
    if failure is not None and job.state in (State.FAILED, State.SCHEDULED, State.ENQUEUED):
        sections.append(
            _exception_block(
                failure, "Exception" if job.state is State.FAILED else "Last exception"
            )
        )
    sections += [
        '<div class="grid-2">',
        panel("Details", _definition(facts)),
        panel("Timings", _definition(timings)),
        "</div>",
        '<section class="panel"><div class="panel-head"><h2>Arguments</h2></div>'
        f'<pre class="json" tabindex="0">{esc(arguments)}</pre></section>',
    ]
    if job.state is State.SUCCEEDED and job.result is not None:
        sections.append(
            '<section class="panel"><div class="panel-head"><h2>Result</h2></div>'
            f'<pre class="json" tabindex="0">{esc(pretty_json(job.result))}</pre></section>'
        )
    if children:
        rows = [
            [job_link(ctx, c.id), target_cell(ctx, c), badge(c.state), c.continuation_on or ""]
            for c in children
        ]
        sections.append(
            '<section class="panel"><div class="panel-head"><h2>Continuations</h2></div>'
            + table(["Id", "Job", "State", "On"], rows, empty="")
            + "</section>"
        )
    sections.append(
        '<section class="panel"><div class="panel-head"><h2>State history</h2></div>'
        f"{_history(ctx, job.history)}</section>"
    )
    related = " ".join(str(i) for i in [job.id, job.parent_id, *(c.id for c in children)] if i)
    body = Html(
        f'<div class="live-region" data-refresh="job" data-jobs="{esc(related)}">'
        + "".join(str(s) for s in sections)
        + "</div>"
    )
    return Rendered(f"Job #{job.id}", body, SLUG_OF[job.state], live="job")


# -- recurring and servers -----------------------------------------------------------


def _epoch_when(value: float | None, now: dt.datetime) -> Html:
    return when(to_datetime(value), now)


def recurring(engine: JobEngine, ctx: Context) -> Rendered:
    """Recurring job definitions, their schedule and last run."""
    storage = engine.monitoring
    defs: list[RecurringJob] = storage.list_recurring()
    rows = []
    for rec in defs:
        last: Job | None = storage.get_job(rec.last_job_id) if rec.last_job_id else None
        last_cell: object = Html('<span class="muted">never ran</span>')
        if rec.last_job_id:
            last_cell = Html(
                f"{job_link(ctx, rec.last_job_id)} "
                + (badge(last.state) if last else '<span class="muted">expired</span>')
            )
        row: list[object] = []
        if not ctx.read_only:
            row.append(select_box(rec.id, f"Select recurring job {rec.id}"))
        row += [
            Html(
                tag("strong", rec.id)
                + (tag("div", rec.error, class_="error-text") if rec.error else "")
            ),
            tag("code", rec.cron),
            rec.tz,
            Html(
                tag("span", rec.target, class_="mono") + " " + tag("span", rec.queue, class_="chip")
            ),
            _epoch_when(rec.next_run_at, ctx.now),
            _epoch_when(rec.last_run_at, ctx.now),
            last_cell,
        ]
        if not ctx.read_only:
            row.append(
                Html(
                    '<div class="row-actions">'
                    + action_button(ctx, "trigger", "Trigger now", value=rec.id)
                    + action_button(
                        ctx,
                        "remove",
                        "Remove",
                        value=rec.id,
                        danger=True,
                        confirm=f"Remove recurring job {rec.id}?",
                    )
                    + "</div>"
                )
            )
        rows.append(row)
    headers: list[str | Html] = [SELECT_ALL] if not ctx.read_only else []
    headers += ["Id", "Cron", "Time zone", "Job", "Next run", "Last run", "Last job"]
    if not ctx.read_only:
        headers.append("Actions")
    listing = table(headers, rows, empty="No recurring jobs are defined.", css="jobs")
    bulk = ""
    if not ctx.read_only and rows:
        bulk = (
            '<div class="bulk">'
            + action_button(ctx, "trigger", "Trigger selected")
            + action_button(
                ctx,
                "remove",
                "Remove selected",
                danger=True,
                confirm="Remove the selected recurring jobs?",
            )
            + "</div>"
        )
    body = Html(
        '<div class="page-head"><h1>Recurring jobs</h1>'
        f"{tag('span', len(defs), class_='total muted')}</div>"
        '<p class="lead">Cron schedules in a time zone; each run creates an ordinary job.</p>'
        + tag(
            "div",
            action_form(ctx, Html(bulk + listing), css="bulk-form"),
            class_="live-region",
            data_refresh="list",
        )
    )
    return Rendered("Recurring jobs", body, "recurring", live="list")


def servers_table(
    engine: JobEngine,
    ctx: Context,
    servers: Sequence[ServerInfo],
    dead_after: float,
    *,
    running: bool,
) -> Html:
    """Servers with their heartbeat; dead ones marked."""
    rows = []
    for server in servers:
        dead = is_dead(server, ctx.now, dead_after)
        status = (
            tag(
                "span",
                "Dead",
                class_="badge badge-failed",
                title=f"No heartbeat for over {dead_after:g}s",
            )
            if dead
            else tag("span", "Alive", class_="badge badge-succeeded")
        )
        row: list[object] = [
            Html(tag("span", server.id, class_="mono") + " " + status),
            f"{server.hostname} · pid {server.pid}",
            join((tag("span", q, class_="chip") for q in server.queues), " "),
            server.concurrency,
            when(server.started_at, ctx.now),
            when(server.heartbeat_at, ctx.now),
        ]
        if running:
            jobs = engine.monitoring.running_on(server.id)
            row.append(
                join((job_link(ctx, j.id) for j in jobs), " ")
                if jobs
                else Html('<span class="muted">idle</span>')
            )
        rows.append(row)
    headers = ["Server", "Host", "Queues", "Workers", "Started", "Heartbeat"]
    if running:
        headers.append("Running jobs")
    return table(headers, rows, empty="No server is running. Start one with `diquis worker`.")


def servers(engine: JobEngine, ctx: Context, dead_after: float) -> Rendered:
    """Job servers: heartbeat, queues, concurrency and what they run now."""
    found = engine.monitoring.list_servers()
    dead = sum(1 for s in found if is_dead(s, ctx.now, dead_after))
    note = f" · {dead} dead" if dead else ""
    body = Html(
        '<div class="page-head"><h1>Servers</h1>'
        f"{tag('span', f'{len(found)}{note}', class_='total muted')}</div>"
        f'<p class="lead">A server silent for {esc(f"{dead_after:g}")} s is marked dead; '
        "its jobs are requeued by the others.</p>"
        + tag(
            "div",
            servers_table(engine, ctx, found, dead_after, running=True),
            class_="live-region",
            data_refresh="list",
        )
    )
    return Rendered("Servers", body, "servers", live="list")


def stats(engine: JobEngine, now: float) -> dict[str, Any]:
    """The JSON the live counters read."""
    counts = nav_counts(engine)
    return {"counts": counts, "at": now}
