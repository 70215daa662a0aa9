"""Backplanes: how a message sent on one process reaches connections on every process."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import BackplaneError
from .base import Backplane, Handler
from .memory import MemoryBackplane

__all__ = ["Backplane", "Handler", "MemoryBackplane", "backplane_from_url"]


def _pop_query(url: str, name: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    value = next((v for k, v in pairs if k == name), None)
    rest = urlencode([(k, v) for k, v in pairs if k != name])
    return urlunsplit(parts._replace(query=rest)), value


def backplane_from_url(url: str) -> Backplane:
    """Build a backplane: memory://[name], postgresql://..., redis://..., sqlite:///path.

    `?channel=` names the PostgreSQL/Redis channel; `?poll_interval=` tunes the SQLite poll.
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        name = url[len("memory://") :] if url.startswith("memory://") else ""
        return MemoryBackplane(name or None)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresBackplane

        clean, channel = _pop_query(url, "channel")
        return PostgresBackplane(clean, channel=channel or "diquis_realtime")
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBackplane

        clean, channel = _pop_query(url, "channel")
        return RedisBackplane(clean, channel=channel or "diquis:realtime")
    if scheme == "sqlite":
        from .sqlite import SqliteOutboxBackplane

        location, _, query = url.partition("?")
        interval = dict(parse_qsl(query)).get("poll_interval")
        # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them.
        path = location[len("sqlite:///") :] if location.startswith("sqlite:///") else ""
        if not path:
            raise BackplaneError("sqlite backplane URL must look like sqlite:///path/to/outbox.db")
        try:
            poll = float(interval) if interval else 0.05
        except ValueError:
            raise BackplaneError("sqlite backplane 'poll_interval' must be a number") from None
        return SqliteOutboxBackplane(path, poll_interval=poll)
    raise BackplaneError(f"unsupported backplane URL scheme {scheme!r}")
