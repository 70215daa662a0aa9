"""The dashboard's chrome and shared pieces: page shell, navigation, badges, tables, forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from ..jobs import Job, State
from .csrf import CSRF_FIELD
from .markup import Html, esc, join, tag

#: URL slug of each state's list, in the order the navigation shows them
STATE_SLUGS: dict[str, State] = {
    "enqueued": State.ENQUEUED,
    "scheduled": State.SCHEDULED,
    "processing": State.PROCESSING,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "deleted": State.DELETED,
    "awaiting": State.AWAITING,
}
SLUG_OF = {state: slug for slug, state in STATE_SLUGS.items()}


@dataclass
class Context:
    """What every page needs to know about the request it answers."""

    base: str
    #: the page's path below ``base`` (``/jobs/failed``)
    path: str
    #: the full path and query of this page, where actions come back to
    here: str
    csrf_token: str
    read_only: bool
    now: dt.datetime
    user: str | None = None
    logout: bool = False
    flash: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    asset_version: str = ""

    def url(self, path: str = "/", **query: object) -> str:
        """An absolute dashboard URL with ``query`` (None values left out)."""
        params = {k: str(v) for k, v in query.items() if v is not None and v != ""}
        suffix = f"?{urlencode(params)}" if params else ""
        return f"{self.base}{path}{suffix}"


@dataclass(frozen=True)
class Rendered:
    """A page's title, body and where it sits in the navigation."""

    title: str
    body: Html
    current: str
    live: str = "page"
    status: int = 200


def badge(state: State | str) -> Html:
    """A coloured state label."""
    value = state.value if isinstance(state, State) else state
    return tag("span", value, class_=f"badge badge-{value.lower()}", data_state=value)


def job_link(ctx: Context, job_id: int | None) -> Html:
    """``#123`` linking to the job page."""
    if job_id is None:
        return Html('<span class="muted">—</span>')
    return tag("a", f"#{job_id}", href=ctx.url(f"/jobs/{int(job_id)}"), class_="mono")


def target_cell(ctx: Context, job: Job) -> Html:
    """The job's target, a short argument preview and its tags."""
    preview = ", ".join(
        [_short(repr(a)) for a in job.args]
        + [f"{k}={_short(repr(v))}" for k, v in job.kwargs.items()]
    )
    tags = join(
        tag("a", t, href=ctx.url(f"/jobs/{SLUG_OF[job.state]}", q=t), class_="chip")
        for t in job.tags
    )
    return Html(
        tag("a", job.target, href=ctx.url(f"/jobs/{job.id}"), class_="target")
        + tag("div", f"({_short(preview, 120)})", class_="args mono")
        + (tag("div", tags, class_="chips") if job.tags else "")
    )


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def csrf_input(ctx: Context) -> Html:
    """The hidden CSRF field every action form carries."""
    return tag("input", type="hidden", name=CSRF_FIELD, value=ctx.csrf_token)


def action_button(
    ctx: Context,
    action: str,
    label: str,
    *,
    value: str | int | None = None,
    name: str = "id",
    danger: bool = False,
    confirm: str | None = None,
) -> Html:
    """A submit button that posts to ``/actions/<action>`` from the enclosing form."""
    return tag(
        "button",
        label,
        type="submit",
        formaction=ctx.url(f"/actions/{action}"),
        formmethod="post",
        name=name if value is not None else None,
        value=value,
        class_="btn btn-danger" if danger else "btn",
        data_confirm=confirm,
    )


def action_form(ctx: Context, content: Html, *, css: str = "actions") -> Html:
    """A POST form holding the CSRF token and where to come back to (a plain box if read-only)."""
    if ctx.read_only:
        return Html(f'<div class="{esc(css)}">{content}</div>')
    return Html(
        f'<form method="post" action="{esc(ctx.url("/actions/none"))}" class="{esc(css)}">'
        f"{csrf_input(ctx)}"
        f'<input type="hidden" name="next" value="{esc(ctx.here)}">'
        f"{content}</form>"
    )


def table(
    headers: Sequence[str | Html], rows: Iterable[Sequence[object]], *, empty: str, css: str = ""
) -> Html:
    """A responsive table (scrolls sideways on a phone); ``empty`` when there are no rows."""
    body = ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows]
    if not body:
        return tag("p", empty, class_="empty")
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    return Html(
        f'<div class="table-wrap"><table class="{esc(css)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def select_box(job_id: int | str, label: str) -> Html:
    """A row checkbox for bulk actions."""
    return tag(
        "input", type="checkbox", name="ids", value=job_id, aria_label=label, class_="row-select"
    )


SELECT_ALL = Html(
    '<input type="checkbox" class="select-all" aria-label="Select all rows on this page">'
)


def nav(ctx: Context, current: str) -> Html:
    """The side navigation with live counters."""

    def item(key: str, label: str, href: str, count_key: str | None = None) -> str:
        count = ""
        if count_key is not None:
            count = str(
                tag("span", ctx.counts.get(count_key, 0), class_="count", data_count=count_key)
            )
        return str(
            tag(
                "a",
                Html(f"<span>{esc(label)}</span>{count}"),
                href=href,
                aria_current="page" if key == current else None,
            )
        )

    jobs = "".join(
        item(slug, state.value, ctx.url(f"/jobs/{slug}"), state.value)
        for slug, state in STATE_SLUGS.items()
    )
    return Html(
        '<nav class="sidenav" aria-label="Dashboard">'
        + item("overview", "Overview", ctx.url("/"))
        + '<h2 class="nav-title">Jobs</h2>'
        + jobs
        + '<h2 class="nav-title">Operations</h2>'
        + item("retries", "Retries", ctx.url("/retries"), "retries")
        + item("batches", "Batches", ctx.url("/batches"))
        + item("recurring", "Recurring jobs", ctx.url("/recurring"), "recurring")
        + item("servers", "Servers", ctx.url("/servers"), "servers")
        + "</nav>"
    )


def head(ctx: Context, title: str) -> Html:
    """``<head>``: no inline script or style, so the strict CSP holds."""
    version = esc(ctx.asset_version)
    return Html(
        '<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="same-origin">'
        f"<title>{esc(title)} · Diquis Jobs</title>"
        f'<link rel="stylesheet" href="{esc(ctx.url("/static/dashboard.css"))}?v={version}">'
        f'<script src="{esc(ctx.url("/static/dashboard.js"))}?v={version}" defer></script>'
        "</head>"
    )


def page(ctx: Context, title: str, body: Html, *, current: str, live: str = "page") -> Html:
    """A full dashboard page."""
    who = ""
    if ctx.user:
        logout = ""
        if ctx.logout:
            logout = (
                f'<form method="post" action="{esc(ctx.url("/logout"))}">{csrf_input(ctx)}'
                '<button class="link-button" type="submit">Sign out</button></form>'
            )
        who = f'<div class="who"><span class="user">{esc(ctx.user)}</span>{logout}</div>'
    flash = tag("div", ctx.flash, class_="flash", role="status") if ctx.flash else Html("")
    readonly = (
        '<span class="pill" title="Actions are disabled">Read-only</span>' if ctx.read_only else ""
    )
    return Html(
        "<!doctype html>"
        f'<html lang="en">{head(ctx, title)}'
        f'<body data-base="{esc(ctx.base)}" data-live="{esc(live)}">'
        '<a class="skip" href="#main">Skip to content</a>'
        '<header class="topbar">'
        f'<a class="brand" href="{esc(ctx.url("/"))}">Diquis <span>Jobs</span></a>'
        '<span class="live" id="live-status" role="status" data-state="connecting">'
        '<span class="dot" aria-hidden="true"></span><span class="live-text">Connecting</span>'
        f"</span>{readonly}{who}</header>"
        f'<div class="shell">{nav(ctx, current)}'
        f'<main id="main" tabindex="-1">{flash}{body}</main></div></body></html>'
    )


def bare_page(ctx: Context, title: str, body: Html) -> Html:
    """A page without navigation (login, forbidden)."""
    return Html(
        f'<!doctype html><html lang="en">{head(ctx, title)}<body class="bare">'
        f'<main id="main" class="bare-main">'
        f'<div class="brand brand-big">Diquis <span>Jobs</span></div>{body}</main></body></html>'
    )


def pager(
    ctx: Context, page_no: int, has_next: bool, total: int | None, size: int, **q: object
) -> Html:
    """Previous / next links and the range shown."""
    first = (page_no - 1) * size + 1
    shown = f"Page {page_no}"
    if total is not None:
        last = min(total, page_no * size)
        shown = f"{first}–{last} of {total}" if total else "0 of 0"
    prev = (
        tag("a", "← Newer", href=ctx.url(ctx.path, page=page_no - 1, **q), class_="btn", rel="prev")
        if page_no > 1
        else Html("")
    )
    nxt = (
        tag("a", "Older →", href=ctx.url(ctx.path, page=page_no + 1, **q), class_="btn", rel="next")
        if has_next
        else Html("")
    )
    return Html(f'<div class="pager"><span class="muted">{esc(shown)}</span>{prev}{nxt}</div>')
