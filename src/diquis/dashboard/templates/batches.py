"""Batches: the list (state, progress, counts) and one batch (its jobs and continuations)."""

from __future__ import annotations

from ...jobs import Batch, BatchState, State
from ..batch_views import BatchDetail, BatchList
from ..layout import Context, Rendered, badge, job_link, pager, table
from ..markup import Html, esc, join, tag, when
from ..views import PAGE_SIZE
from .parts import definition, job_rows, panel

_BATCH_BADGE = {
    BatchState.STARTED: State.PROCESSING,
    BatchState.SUCCEEDED: State.SUCCEEDED,
    BatchState.FAILED: State.FAILED,
    BatchState.CANCELLED: State.DELETED,
}


def batch_badge(batch: Batch) -> Html:
    """The batch's state, coloured like the job state it resembles."""
    css = str(_BATCH_BADGE[batch.state].value).lower()
    return tag("span", batch.state.value, class_=f"badge badge-{css}")


def progress_bar(percent: float, label: str) -> Html:
    """A progress bar (a native ``<progress>``: no inline style under the strict CSP)."""
    shown = f"{percent:g}%"
    return Html(
        '<span class="progress-cell">'
        f"{tag('progress', shown, max='100', value=f'{percent:g}', aria_label=label)}"
        f"{tag('span', shown, class_='muted')}</span>"
    )


def _counts(batch: Batch) -> Html:
    return join(
        (
            tag("span", f"{state.value} {n}", class_="chip")
            for state, n in sorted(batch.counts.items(), key=lambda kv: kv[0].value)
            if n
        ),
        " ",
    )


def batch_link(ctx: Context, batch_id: int | None) -> Html:
    """A link to a batch's page."""
    if batch_id is None:
        return Html("—")
    return tag("a", f"#{batch_id}", href=ctx.url(f"/batches/{batch_id}"), class_="mono")


def render_list(ctx: Context, view: BatchList) -> Rendered:
    """Batches newest first, with state, progress and counts; refreshed live."""
    total = view.total
    rows = [
        [
            batch_link(ctx, b.id),
            batch_badge(b),
            progress_bar(b.progress, f"Batch {b.id} progress"),
            f"{b.done} / {b.total}",
            _counts(b),
            when(b.created_at, ctx.now),
            when(b.finished_at, ctx.now),
        ]
        for b in view.batches
    ]
    content = Html(
        table(
            ["Batch", "State", "Progress", "Done", "Jobs", "Created", "Finished"],
            rows,
            empty="No batches yet.",
            css="batches",
        )
        + pager(ctx, view.page_no, view.has_next, total, PAGE_SIZE)
    )
    body = Html(
        '<div class="page-head"><h1>Batches</h1>'
        f"{tag('span', total, class_='total muted')}</div>"
        '<p class="lead">Jobs created together and followed as one.</p>'
        + tag("div", content, class_="live-region", data_refresh="list")
    )
    return Rendered("Batches", body, "batches", live="list")


def missing(batch_id: int) -> Rendered:
    """The page for a batch that does not exist."""
    body = Html(f'<div class="card-box"><h1>Batch #{esc(batch_id)} does not exist</h1></div>')
    return Rendered("Batch not found", body, "batches", status=404)


def render_batch(ctx: Context, view: BatchDetail) -> Rendered:
    """One batch: state, progress, its jobs and what continues it; refreshed live."""
    batch = view.batch
    summary = definition(
        [
            ("State", batch_badge(batch)),
            ("Progress", progress_bar(batch.progress, "Batch progress")),
            ("Jobs", f"{batch.done} of {batch.total} finished"),
            ("Counts", _counts(batch) or Html("—")),
            ("Created", when(batch.created_at, ctx.now)),
            ("Finished", when(batch.finished_at, ctx.now)),
            ("Continues batch", batch_link(ctx, batch.parent_batch_id)),
        ]
    )
    job_table = Html(
        job_rows(
            ctx,
            ["State", "Queue"],
            view.jobs,
            lambda j: [badge(j.state), tag("span", j.queue, class_="chip")],
            selectable=False,
            empty="This batch has no jobs yet.",
        )
        + pager(ctx, view.page_no, view.has_next, batch.total, PAGE_SIZE)
    )
    next_table = table(
        ["Job", "State", "Runs when"],
        [
            [
                job_link(ctx, j.id),
                badge(j.state),
                "the batch ends" if j.continuation_on == "any" else "the batch succeeds",
            ]
            for j in view.continuations
        ],
        empty="Nothing continues this batch.",
    )
    content = Html(summary + panel("Jobs", job_table) + panel("Continuations", next_table))
    body = Html(
        f'<div class="page-head"><h1>Batch #{esc(batch.id)}</h1></div>'
        + tag("div", content, class_="live-region", data_refresh="list")
    )
    return Rendered(f"Batch #{batch.id}", body, "batches", live="list")
