"""Server-rendered SVG charts (no chart library, no inline style: CSS classes colour them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..jobs import State
from .markup import Html, esc

WIDTH = 720
HEIGHT = 160
PAD_LEFT = 48
PAD_BOTTOM = 20
PAD_TOP = 10


def _nice_max(value: int) -> int:
    for step in (1, 2, 5):
        for scale in (1, 10, 100, 1000, 10000, 100000, 1000000):
            if value <= step * scale * 4:
                return step * scale * 4
    return value


def history_chart(
    stats: Sequence[tuple[float, State, int]], *, start: float, hours: int, bucket: int = 3600
) -> Html:
    """Stacked bars of succeeded / failed runs per hour since ``start``."""
    ok = [0] * hours
    fail = [0] * hours
    for at, state, count in stats:
        index = int((at - start) // bucket)
        if 0 <= index < hours:
            if state is State.SUCCEEDED:
                ok[index] += count
            elif state is State.FAILED:
                fail[index] += count
    top = _nice_max(max([a + b for a, b in zip(ok, fail, strict=True)] + [1]))
    plot_w = WIDTH - PAD_LEFT
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    floor = HEIGHT - PAD_BOTTOM
    slot = plot_w / hours
    bar = max(slot * 0.8, 0.6)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Succeeded and failed jobs per hour, last {hours} hours">'
    ]
    for frac in (0, 0.5, 1):
        y = floor - frac * plot_h
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{PAD_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{int(top * frac)}</text>"
        )
    label_every = 6 if hours <= 24 else 24
    for i in range(hours):
        x = PAD_LEFT + i * slot + (slot - bar) / 2
        h_ok = ok[i] / top * plot_h
        h_fail = fail[i] / top * plot_h
        when = dt.datetime.fromtimestamp(start + i * bucket, dt.UTC)
        title = f"{when:%a %d %b %H:00} UTC — {ok[i]} succeeded, {fail[i]} failed"
        parts.append(f"<g><title>{esc(title)}</title>")
        parts.append(
            f'<rect class="hit" x="{PAD_LEFT + i * slot:.2f}" y="{PAD_TOP}" '
            f'width="{slot:.2f}" height="{plot_h}"/>'
        )
        if ok[i]:
            parts.append(
                f'<rect class="bar-ok" x="{x:.2f}" y="{floor - h_ok:.2f}" '
                f'width="{bar:.2f}" height="{h_ok:.2f}"/>'
            )
        if fail[i]:
            parts.append(
                f'<rect class="bar-fail" x="{x:.2f}" y="{floor - h_ok - h_fail:.2f}" '
                f'width="{bar:.2f}" height="{h_fail:.2f}"/>'
            )
        parts.append("</g>")
        if i % label_every == 0:
            label = f"{when:%H:00}" if hours <= 24 else f"{when:%a %d}"
            # on a phone every other day's label is hidden (they would overlap)
            minor = " axis-minor" if hours > 24 and (i // label_every) % 2 else ""
            parts.append(
                f'<text class="axis{minor}" x="{PAD_LEFT + i * slot:.1f}" y="{HEIGHT - 5}">'
                f"{esc(label)}</text>"
            )
    parts.append("</svg>")
    total_ok, total_fail = sum(ok), sum(fail)
    summary = (
        f'<p class="chart-summary"><span class="key key-ok"></span>{total_ok} succeeded '
        f'<span class="key key-fail"></span>{total_fail} failed</p>'
    )
    return Html("".join(parts) + summary)


def live_chart(seconds: int = 60) -> Html:
    """The empty frame the browser script fills from the live feed."""
    return Html(
        f'<svg class="chart" id="live-chart" data-keep data-seconds="{seconds}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-label="Succeeded and failed jobs per second, last minute">'
        f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH}" y1="{HEIGHT - PAD_BOTTOM}" '
        f'y2="{HEIGHT - PAD_BOTTOM}"/></svg>'
        '<p class="chart-summary" id="live-summary" data-keep aria-live="off">'
        '<span class="key key-ok"></span><span data-live-total="Succeeded">0</span> succeeded '
        '<span class="key key-fail"></span><span data-live-total="Failed">0</span> failed '
        "since this page opened</p>"
    )
