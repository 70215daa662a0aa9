"""The database seam: one small connector per database (IO primitives and the few SQL
differences between dialects, kept here instead of scattered through the job store)."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from ..model import StateChange


class Waker(abc.ABC):
    """What an idle server awaits: returns when new work may have arrived, or on timeout."""

    @abc.abstractmethod
    async def wait(self, timeout: float) -> None:
        """Return as soon as work may be ready, or after ``timeout`` seconds."""

    @abc.abstractmethod
    def poke(self) -> None:
        """Wake the waiter now (a job was enqueued in this process); thread-safe."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the waker holds."""


class Connector(abc.ABC):
    """Connections, statements and dialect switches for one database."""

    #: the URL scheme this connector serves, for messages
    name: str = "sql"
    #: appended to a SELECT that will update the rows it reads
    lock_for_update: str = ""
    #: appended to a SELECT of a row that must not change before the commit
    lock_for_share: str = ""
    #: appended to a SELECT whose rows a concurrent worker may skip
    skip_locked: str = ""

    @abc.abstractmethod
    def transaction(self, write: bool = True) -> contextlib.AbstractContextManager[Any]:
        """A connection inside a transaction, committed on a clean exit (``write``: may write)."""

    def relaxed_commits(self) -> contextlib.AbstractContextManager[None]:
        """Within it, this thread's commits need not wait for the disk (a claim-only round;
        see :meth:`SQLiteConnector.relaxed_commits`). Here: no change, every commit durable."""
        return contextlib.nullcontext()

    def sql(self, query: str) -> str:
        """The query (written with ``?`` placeholders) in this driver's placeholder style."""
        return query

    def execute(self, conn: Any, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement on ``conn`` and return its cursor."""
        return conn.execute(self.sql(query), params)

    def executemany(self, conn: Any, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``."""
        if rows:
            conn.cursor().executemany(self.sql(query), rows)

    def lock_gated_claims(self, conn: Any) -> None:
        """Serialize claims that weigh mutexes and limits until ``conn`` commits.

        Nothing to do where a write transaction already excludes other writers (SQLite).
        """
        return None

    def is_unique_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this driver's unique-constraint error."""
        return False

    def is_connection_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the database (not one statement's data) failed."""
        return False

    @contextlib.contextmanager
    def savepoint(self, conn: Any) -> Iterator[None]:
        """A block whose writes are undone alone if it raises (the transaction goes on)."""
        conn.execute("SAVEPOINT diquis_job")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO SAVEPOINT diquis_job")
            conn.execute("RELEASE SAVEPOINT diquis_job")
            raise
        conn.execute("RELEASE SAVEPOINT diquis_job")

    @abc.abstractmethod
    def driver_connection(self, connection: Any) -> Any:
        """The DB-API connection inside a caller's connection (e.g. a SQLAlchemy one)."""

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the job tables; safe from many processes at once."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def state_changes(self, poll_interval: float = 0.05) -> AsyncIterator[StateChange]:
        """Every state change from any process, as it commits (until cancelled)."""

    @abc.abstractmethod
    def waker(self, queues: Sequence[str]) -> Waker:
        """An object a server awaits while idle; it returns when new work may be there."""


def marks(n: int) -> str:
    """``?, ?, ?`` for n values."""
    return ", ".join("?" * n)


__all__ = ["Connector", "Waker", "marks"]
