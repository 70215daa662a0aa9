"""A running job's progress bar, message and log (the job page and the Processing list)."""

from __future__ import annotations

from ...jobs import Job
from ..markup import Html, esc, tag, utc_text
from .batches import progress_bar


def progress_cell(job: Job) -> Html:
    """The progress bar of a job's list row ("—" before it reports any)."""
    if job.progress is None:
        return Html('<span class="muted">—</span>')
    return progress_bar(job.progress, f"Job {job.id} progress")


def progress_panel(job: Job) -> Html:
    """Progress, message and log lines, newest last (nothing if the job reported none)."""
    if job.progress is None and not job.log:
        return Html("")
    parts = []
    if job.progress is not None:
        parts.append(
            '<div class="job-progress">'
            + progress_bar(job.progress, "Job progress")
            + (
                tag("span", job.progress_message, class_="progress-message")
                if job.progress_message
                else ""
            )
            + "</div>"
        )
    if job.log:
        lines = "\n".join(f"{utc_text(x.at)}  {x.line}" for x in job.log)
        parts.append(f'<pre class="job-log" tabindex="0">{esc(lines)}</pre>')
    return Html(
        '<section class="panel"><div class="panel-head"><h2>Progress</h2></div>'
        + "".join(parts)
        + "</section>"
    )
