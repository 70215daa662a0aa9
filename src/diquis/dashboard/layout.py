"""The dashboard's chrome and shared pieces: page shell, navigation, badges, tables, forms."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

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
    #: tag prefix -> URL template in the host app (``{value}``: the tag's value, encoded)
    tag_links: dict[str, str] = field(default_factory=dict)
    #: the host app's home ("Back to app"), or None
    app_path: str | None = None

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
    #: jobs whose changes refresh this page at once (others: after a short delay)
    watch: tuple[int, ...] = ()
    #: seconds between resyncs when nothing is reported (heartbeats, expiries)
    refresh_every: int = 15


def badge(state: State | str) -> Html:
    """A coloured state label."""
    value = state.value if isinstance(state, State) else state
    return tag("span", value, class_=f"badge badge-{value.lower()}", data_state=value)


def job_link(ctx: Context, job_id: int | None) -> Html:
    """``#123`` linking to the job page."""
    if job_id is None:
        return Html('<span class="muted">—</span>')
    return tag("a", f"#{job_id}", href=ctx.url(f"/jobs/{int(job_id)}"), class_="mono")


def readable_target(target: str) -> str:
    """``tenancy.provision_tenant`` as ``Provision tenant`` (the function's name, in words)."""
    name = target.rsplit(".", 1)[-1].rsplit(":", 1)[-1].strip("_")
    # ProvisionTenantJob -> Provision_Tenant_Job; then snake_case -> words
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else target


def tag_app_url(ctx: Context, tag_text: str) -> str | None:
    """The host app's page for a tag such as ``tenant:acme`` (None: no link configured)."""
    prefix, sep, value = tag_text.partition(":")
    template = ctx.tag_links.get(prefix) if sep and value else None
    if template is None:
        return None
    return template.replace("{value}", quote(value, safe=""))


def tag_chip(ctx: Context, tag_text: str, list_path: str) -> Html:
    """A tag: filters the list by it, and links to the host app's page for it if configured."""
    chip = tag(
        "a",
        tag_text,
        href=ctx.url(list_path, tag=tag_text),
        class_="chip",
        title=f"Only jobs tagged {tag_text}",
    )
    app_url = tag_app_url(ctx, tag_text)
    if app_url is None:
        return chip
    prefix, _, value = tag_text.partition(":")
    out = tag(
        "a",
        Html('<span aria-hidden="true">↗</span>'),
        href=app_url,
        class_="tag-app",
        aria_label=f"Open {prefix} {value} in the app",
        title=f"Open {prefix} {value} in the app",
    )
    return tag("span", Html(chip + out), class_="tag")


def target_cell(ctx: Context, job: Job) -> Html:
    """The job in words, its target's full name and its tags (arguments: on the job page)."""
    list_path = f"/jobs/{SLUG_OF[job.state]}"
    tags = join(tag_chip(ctx, t, list_path) for t in job.tags)
    return Html(
        tag("a", readable_target(job.target), href=ctx.url(f"/jobs/{job.id}"), class_="target")
        + tag("div", job.target, class_="target-name mono")
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
    headers: Sequence[str | Html],
    rows: Iterable[Sequence[object]],
    *,
    empty: str,
    css: str = "",
    keys: Sequence[object] | None = None,
    label: str = "Table",
) -> Html:
    """A responsive table (scrolls sideways on a phone, and says so); ``empty`` when there are
    no rows; ``keys`` name the rows so live updates move them instead of rewriting them."""
    body = []
    for n, row in enumerate(rows):
        key = f' data-key="{esc(keys[n])}"' if keys is not None else ""
        body.append(f"<tr{key}>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>")
    if not body:
        return tag("p", empty, class_="empty")
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    return Html(
        '<div class="table-frame"><p class="scroll-hint" aria-hidden="true">'
        "More columns: scroll the table sideways →</p>"
        # focusable, so a keyboard can scroll it sideways too
        f'<div class="table-wrap" tabindex="0" role="region" aria-label="{esc(label)}">'
        f'<table class="{esc(css)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></div>"
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


LOGO = Html(
    '<svg class="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">'
    '<rect class="logo-square" width="32" height="32" rx="7"/>'
    '<path class="logo-mark" d="M10 8h6.5a8 8 0 0 1 0 16H10z"/>'
    '<circle class="logo-dot" cx="16.5" cy="16" r="2.5"/></svg>'
)


def page(ctx: Context, rendered: Rendered) -> Html:
    """A full dashboard page; the ``data-live-root`` shell is what live updates refresh."""
    title, body, current = rendered.title, rendered.body, rendered.current
    who = ""
    if ctx.user:
        logout = ""
        if ctx.logout:
            logout = (
                f'<form method="post" action="{esc(ctx.url("/logout"))}">{csrf_input(ctx)}'
                '<button class="link-button" type="submit">Log out</button></form>'
            )
        who = f'<span class="user">{esc(ctx.user)}</span>{logout}'
    back = (
        tag("a", "← Back to app", href=ctx.app_path, class_="app-link")
        if ctx.app_path
        else Html("")
    )
    readonly = (
        '<span class="pill" title="Actions are disabled">Read-only</span>' if ctx.read_only else ""
    )
    toast = (
        '<div class="toast" role="status" data-timeout="8000">'
        f"{tag('p', ctx.flash)}"
        '<button class="toast-close" type="button" aria-label="Dismiss">×</button></div>'
        if ctx.flash
        else ""
    )
    watch = " ".join(str(int(i)) for i in rendered.watch)
    return Html(
        "<!doctype html>"
        f'<html lang="en">{head(ctx, title)}'
        f'<body data-base="{esc(ctx.base)}" data-live="{esc(rendered.live)}" '
        f'data-refresh-every="{int(rendered.refresh_every)}">'
        '<a class="skip" href="#main">Skip to content</a>'
        '<header class="topbar">'
        f'<a class="brand" href="{esc(ctx.url("/"))}">{LOGO}<span>Diquis</span>'
        '<span class="sub">Jobs</span></a>'
        '<span class="live" id="live-status" role="status" data-state="connecting">'
        '<span class="dot" aria-hidden="true"></span><span class="live-text">Connecting</span>'
        f'</span>{readonly}<div class="who">{back}{who}</div></header>'
        f'<div class="toasts" aria-live="polite">{toast}</div>'
        f'<div class="shell" data-live-root data-jobs="{esc(watch)}">{nav(ctx, current)}'
        f'<main id="main" tabindex="-1">{body}</main></div></body></html>'
    )


def bare_page(ctx: Context, title: str, body: Html) -> Html:
    """A page without navigation (log-in, forbidden)."""
    return Html(
        f'<!doctype html><html lang="en">{head(ctx, title)}<body class="bare">'
        f'<main id="main" class="bare-main">'
        f'<div class="brand brand-big">{LOGO}<span>Diquis</span><span class="sub">Jobs</span>'
        f"</div>{body}</main></body></html>"
    )


def pager(
    ctx: Context, page_no: int, has_next: bool, total: int | None, size: int, /, **q: object
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
