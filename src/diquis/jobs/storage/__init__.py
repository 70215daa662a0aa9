"""Storage backends for jobs, chosen by URL."""

from __future__ import annotations

from ..errors import ConfigurationError
from .base import Storage, Waker


def open_storage(url: str) -> Storage:
    """The storage named by ``url``: ``sqlite:///path`` or ``postgresql://...``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteStorage

        return SQLiteStorage(url)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStorage

        return PostgresStorage(url)
    raise ConfigurationError(
        f"unsupported job storage URL {url!r}: use sqlite:///path/to/file.db or postgresql://..."
    )


__all__ = ["Storage", "Waker", "open_storage"]
