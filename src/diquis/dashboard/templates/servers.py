"""Job servers: heartbeat, queues, concurrency and what they run now."""

from __future__ import annotations

from ..layout import Context, Rendered
from ..markup import Html, esc, tag
from ..views import Servers
from .parts import servers_table


def render(ctx: Context, view: Servers) -> Rendered:
    note = f" · {view.dead} dead" if view.dead else ""
    body = Html(
        '<div class="page-head"><h1>Servers</h1>'
        f"{tag('span', f'{len(view.rows)}{note}', class_='total muted')}</div>"
        f'<p class="lead">A server silent for {esc(f"{view.dead_after:g}")} s is marked dead; '
        "its jobs are requeued by the others.</p>"
        + tag("div", servers_table(ctx, view), class_="live-region", data_refresh="list")
    )
    return Rendered("Servers", body, "servers", live="list", refresh_every=5)
