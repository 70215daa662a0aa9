"""Storage backends for jobs, chosen by URL: a connector per database under one job store."""

from __future__ import annotations

from ..errors import ConfigurationError
from .connector import Connector, Waker
from .store import RecurringPlan, Storage


def open_storage(url: str) -> Storage:
    """The storage named by ``url``: ``sqlite:///path``, ``postgresql://...`` or ``memory://``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteStorage

        return SQLiteStorage(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres import PostgresStorage
        except ImportError as exc:  # psycopg is the [postgres] extra
            raise ConfigurationError(
                f"PostgreSQL job storage needs: pip install 'diquis[postgres]' ({exc})"
            ) from None
        return PostgresStorage(url)
    if scheme == "memory":
        from ..testing import MemoryStorage

        return MemoryStorage()
    # the scheme only: the rest of a URL may hold a password, and messages end up in logs
    raise ConfigurationError(
        f"unsupported job storage URL scheme {scheme!r}: "
        "use sqlite:///path/to/file.db or postgresql://..."
    )


__all__ = ["Connector", "RecurringPlan", "Storage", "Waker", "open_storage"]
