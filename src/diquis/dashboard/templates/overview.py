"""The overview page: counters, live and historic throughput, servers."""

from __future__ import annotations

from ..charts import history_chart, live_chart
from ..layout import STATE_SLUGS, Context, Rendered
from ..markup import Html, esc, join, tag
from ..views import Overview
from .parts import servers_table


def render(ctx: Context, view: Overview) -> Rendered:
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
    chart = history_chart(view.throughput, start=view.start, hours=view.hours)
    tabs = join(
        tag(
            "a",
            label,
            href=ctx.url("/", range=key),
            class_="tab",
            aria_current="true" if key == view.range else None,
        )
        for key, label in (("24h", "24 hours"), ("7d", "7 days"))
    )
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
        f"{servers_table(ctx, view.servers)}</section>"
    )
    return Rendered("Overview", body, "overview", live="overview", refresh_every=5)
