"""Everything about one job: details, timings, arguments, result, continuations, history."""

from __future__ import annotations

from collections.abc import Sequence

from ...jobs import State, StateRecord
from ..layout import (
    SLUG_OF,
    Context,
    Rendered,
    action_button,
    action_form,
    badge,
    job_link,
    readable_target,
    table,
    tag_chip,
    target_cell,
)
from ..markup import Html, esc, join, local_time, milliseconds, pretty_json, tag, when
from ..views import JobDetail
from .parts import definition, panel
from .progress import progress_panel


def missing(job_id: int) -> Rendered:
    """The page of a job that does not exist (or has expired)."""
    body = Html(
        f'<h1>Job #{esc(job_id)}</h1><p class="empty">This job does not exist (or has expired).</p>'
    )
    return Rendered(f"Job #{job_id}", body, "", status=404)


def _exception(record: StateRecord, title: str) -> Html:
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
            f'<span class="muted">{local_time(record.at)}</span></div>'
            + (tag("p", record.reason, class_="reason") if record.reason else "")
            + (tag("p", " · ".join(details), class_="muted small") if details else "")
            + trace
            + "</li>"
        )
    return Html('<ol class="timeline">' + "".join(items) + "</ol>")


def _timings(ctx: Context, view: JobDetail) -> list[tuple[str, object]]:
    job = view.job
    timings: list[tuple[str, object]] = [("Created", when(job.created_at, ctx.now))]
    if view.processing is not None and "latency_ms" in view.processing.data:
        timings.append(("Latency", milliseconds(view.processing.data["latency_ms"])))
    if view.finished is not None and "duration_ms" in view.finished.data:
        timings.append(("Duration", milliseconds(view.finished.data["duration_ms"])))
    for label, at in (
        ("Started", job.started_at),
        ("Finished", job.finished_at),
        ("Scheduled for", job.scheduled_at),
        ("Expires", job.expire_at),
    ):
        if at is not None:
            timings.append((label, when(at, ctx.now)))
    return timings


def _facts(ctx: Context, view: JobDetail) -> list[tuple[str, object]]:
    job = view.job
    tags = (
        join(tag_chip(ctx, t, f"/jobs/{SLUG_OF[job.state]}") for t in job.tags)
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
    return facts


def _actions(ctx: Context, view: JobDetail) -> Html:
    job_id = view.job.id
    buttons: list[Html] = []
    if view.requeue is not None:
        buttons.append(action_button(ctx, "requeue", view.requeue, value=job_id))
    if view.delete is not None:
        buttons.append(
            action_button(
                ctx,
                "delete",
                view.delete,
                value=job_id,
                danger=True,
                confirm=f"{view.delete} job #{job_id}?",
            )
        )
    return action_form(ctx, Html("".join(buttons))) if buttons else Html("")


def render(ctx: Context, view: JobDetail) -> Rendered:
    job = view.job
    arguments = pretty_json({"args": job.args, "kwargs": job.kwargs} if job.kwargs else job.args)
    sections = [
        '<div class="page-head job-head">',
        f'<h1>Job <span class="mono">#{esc(job.id)}</span></h1>',
        badge(job.state),
        _actions(ctx, view),
        "</div>",
        tag(
            "p",
            Html(f"{esc(readable_target(job.target))} · {tag('span', job.target, class_='mono')}"),
            class_="target-title",
        ),
        progress_panel(job),
    ]
    if view.failure is not None:
        sections.append(_exception(view.failure, view.failure_title))
    sections += [
        '<div class="grid-2">',
        panel("Details", definition(_facts(ctx, view))),
        panel("Timings", definition(_timings(ctx, view))),
        "</div>",
        '<section class="panel"><div class="panel-head"><h2>Arguments</h2></div>'
        f'<pre class="json" tabindex="0">{esc(arguments)}</pre></section>',
    ]
    if job.state is State.SUCCEEDED and job.result is not None:
        sections.append(
            '<section class="panel"><div class="panel-head"><h2>Result</h2></div>'
            f'<pre class="json" tabindex="0">{esc(pretty_json(job.result))}</pre></section>'
        )
    if view.children:
        rows = [
            [job_link(ctx, c.id), target_cell(ctx, c), badge(c.state), c.continuation_on or ""]
            for c in view.children
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
    related = " ".join(str(i) for i in view.related)
    # a running job's progress is no state change: the page asks again every second
    poll = ' data-poll="1000"' if job.state is State.PROCESSING else ""
    body = Html(
        f'<div class="live-region" data-refresh="job" data-jobs="{esc(related)}"{poll}>'
        + "".join(str(s) for s in sections)
        + "</div>"
    )
    return Rendered(
        f"Job #{job.id}", body, SLUG_OF[job.state], live="job", watch=tuple(view.related)
    )
