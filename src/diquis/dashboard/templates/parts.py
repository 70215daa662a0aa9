"""HTML pieces more than one page uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...jobs import Job, State
from ...jobs.states import DELETABLE, REQUEUEABLE
from ..layout import (
    SELECT_ALL,
    Context,
    action_button,
    action_form,
    job_link,
    select_box,
    table,
    target_cell,
)
from ..markup import Html, esc, join, tag, when
from ..views import Servers


def panel(title: str, content: Html) -> Html:
    """A titled white box."""
    return Html(
        f'<section class="panel"><div class="panel-head"><h2>{esc(title)}</h2></div>'
        f"{content}</section>"
    )


def definition(items: Sequence[tuple[str, object]]) -> Html:
    """A list of facts: name, value."""
    return Html(
        '<dl class="facts">'
        + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
        + "</dl>"
    )


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


def live_list(ctx: Context, content: Html) -> Html:
    """A list region the live feed refreshes, inside the bulk-action form."""
    return tag(
        "div",
        action_form(ctx, content, css="bulk-form"),
        class_="live-region",
        data_refresh="list",
    )


def job_rows(
    ctx: Context,
    headers: Sequence[str | Html],
    jobs: Sequence[Job],
    cells: Callable[[Job], Sequence[object]],
    *,
    selectable: bool,
    empty: str,
) -> Html:
    """A table of jobs: a select box (if ``selectable``), id, target, then ``cells(job)``."""
    rows: list[list[object]] = []
    for job in jobs:
        row: list[object] = [select_box(job.id, f"Select job {job.id}")] if selectable else []
        row += [job_link(ctx, job.id), target_cell(ctx, job), *cells(job)]
        rows.append(row)
    head: list[str | Html] = [SELECT_ALL] if selectable else []
    head += ["Id", "Job", *headers]
    return table(head, rows, empty=empty, css="jobs", keys=[job.id for job in jobs], label="Jobs")


def servers_table(ctx: Context, view: Servers) -> Html:
    """Servers with their heartbeat; dead ones marked; running jobs if the view has them."""
    rows = []
    for row in view.rows:
        server = row.server
        status = (
            tag(
                "span",
                "Dead",
                class_="badge badge-failed",
                title=f"No heartbeat for over {view.dead_after:g}s",
            )
            if row.dead
            else tag("span", "Alive", class_="badge badge-succeeded")
        )
        cells: list[object] = [
            Html(tag("span", server.id, class_="mono") + " " + status),
            f"{server.hostname} · pid {server.pid}",
            join((tag("span", q, class_="chip") for q in server.queues), " "),
            server.concurrency,
            when(server.started_at, ctx.now),
            when(server.heartbeat_at, ctx.now),
        ]
        if view.with_running:
            cells.append(
                join((job_link(ctx, j.id) for j in row.running or []), " ")
                if row.running
                else Html('<span class="muted">idle</span>')
            )
        rows.append(cells)
    headers = ["Server", "Host", "Queues", "Workers", "Started", "Heartbeat"]
    if view.with_running:
        headers.append("Running jobs")
    return table(
        headers,
        rows,
        empty="No server is running. Start one with `diquis worker`.",
        keys=[row.server.id for row in view.rows],
        label="Servers",
    )
