"""Escaping-first HTML building: every value is text unless it is already ``Html``."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable
from typing import Any


class Html(str):
    """Markup that is safe to emit as is (built by this module from escaped parts)."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """``value`` as HTML text: escaped unless it is already ``Html``; None is empty."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    return Html(html.escape(str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    """Parts (each escaped unless ``Html``) joined by ``sep`` (trusted markup)."""
    return Html(sep.join(esc(p) for p in parts))


def tag(name: str, content: Any = None, /, **attributes: Any) -> Html:
    """``<name attr="...">content</name>``; attribute names use ``_`` for ``-``, None drops
    an attribute, True writes it bare; ``class_`` becomes ``class``."""
    out = [f"<{name}"]
    for key, value in attributes.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        out.append(f" {attr}" if value is True else f' {attr}="{esc(value)}"')
    out.append(">")
    if name in VOID:
        return Html("".join(out))
    out.append(esc(content))
    out.append(f"</{name}>")
    return Html("".join(out))


VOID = frozenset({"input", "br", "img", "meta", "link", "hr"})


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON text (unknown types by their ``str``)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def utc_text(when: dt.datetime | None) -> str:
    """``2026-03-10 12:00:01 UTC`` (empty for None)."""
    if when is None:
        return ""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(when: dt.datetime | None, now: dt.datetime) -> str:
    """``3m ago`` / ``in 5s`` (empty for None)."""
    if when is None:
        return ""
    seconds = (when - now).total_seconds()
    text = span(abs(seconds))
    if abs(seconds) < 1:
        return "just now"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def span(seconds: float) -> str:
    """A duration in its largest sensible unit: ``850ms``, ``12s``, ``4m 10s``, ``3h 2m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{hours // 24}d"


def milliseconds(value: Any) -> str:
    """A millisecond figure from history data as a readable duration (empty if not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return span(float(value) / 1000)


def when(value: dt.datetime | None, now: dt.datetime) -> Html:
    """A ``<time>`` with the relative text and the exact UTC time as its title (the browser
    script keeps the text ticking and adds the local time to the title)."""
    if value is None:
        return Html('<span class="muted">—</span>')
    return tag(
        "time",
        relative(value, now),
        datetime=value.isoformat(),
        title=utc_text(value),
        data_kind="relative",
    )


def local_time(value: dt.datetime | None) -> Html:
    """A ``<time>`` the browser shows in local time, the UTC time as its title (UTC text
    until the script runs)."""
    if value is None:
        return Html('<span class="muted">—</span>')
    return tag(
        "time",
        utc_text(value),
        datetime=value.isoformat(),
        title=utc_text(value),
        data_kind="local",
    )
