"""Recurring job definitions, their schedule and last run."""

from __future__ import annotations

import datetime as dt

from ...jobs.model import to_datetime
from ..layout import (
    SELECT_ALL,
    Context,
    Rendered,
    action_button,
    badge,
    job_link,
    select_box,
    table,
)
from ..markup import Html, tag, when
from ..views import RecurringRow
from .parts import live_list


def _epoch_when(value: float | None, now: dt.datetime) -> Html:
    return when(to_datetime(value), now)


def _row(ctx: Context, row: RecurringRow) -> list[object]:
    rec = row.definition
    last_cell: object = Html('<span class="muted">never ran</span>')
    if rec.last_job_id:
        last_cell = Html(
            f"{job_link(ctx, rec.last_job_id)} "
            + (badge(row.last_state) if row.last_state else '<span class="muted">expired</span>')
        )
    cells: list[object] = []
    if not ctx.read_only:
        cells.append(select_box(rec.id, f"Select recurring job {rec.id}"))
    cells += [
        Html(
            tag("strong", rec.id)
            + (tag("div", rec.error, class_="error-text") if rec.error else "")
        ),
        tag("code", rec.cron),
        rec.tz,
        Html(tag("span", rec.target, class_="mono") + " " + tag("span", rec.queue, class_="chip")),
        _epoch_when(rec.next_run_at, ctx.now),
        _epoch_when(rec.last_run_at, ctx.now),
        last_cell,
    ]
    if not ctx.read_only:
        cells.append(
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
    return cells


def render(ctx: Context, view: list[RecurringRow]) -> Rendered:
    rows = [_row(ctx, row) for row in view]
    headers: list[str | Html] = [SELECT_ALL] if not ctx.read_only else []
    headers += ["Id", "Cron", "Time zone", "Job", "Next run", "Last run", "Last job"]
    if not ctx.read_only:
        headers.append("Actions")
    listing = table(
        headers, rows, empty="No recurring jobs are defined.", css="jobs", label="Recurring jobs"
    )
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
        f"{tag('span', len(view), class_='total muted')}</div>"
        '<p class="lead">Cron schedules in a time zone; each run creates an ordinary job.</p>'
        + live_list(ctx, Html(bulk + listing))
    )
    return Rendered("Recurring jobs", body, "recurring", live="list")
