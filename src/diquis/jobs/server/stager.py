"""Moves due work into the queues: scheduled jobs whose time has come, recurring runs.

It runs every ``interval`` seconds, sooner when the next scheduled or recurring job is
due earlier, and at once when :meth:`Stager.wake` is called (a retry was just
scheduled). Every server runs one; the storage makes that safe to do concurrently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .duty import Io, Periodic

if TYPE_CHECKING:
    from ..engine import JobEngine


class Stager(Periodic):
    """Enqueues due scheduled jobs and fires due recurring jobs."""

    name = "stager"

    def __init__(
        self, engine: JobEngine, io: Io, interval: float, on_enqueued: Callable[[], None]
    ) -> None:
        super().__init__(interval)
        self.engine = engine
        self._io = io
        self._on_enqueued = on_enqueued

    def _stage(self, now: float) -> tuple[bool, float | None, float | None]:
        """Both kinds in one trip to the Io threads (an idle server pays one, not two).

        It reads first (one statement on a SQL store) and writes only when something is
        due: an idle tick used to take two write transactions and five statements, most
        of an idle server's cost."""
        storage = self.engine.storage
        due, next_due, next_recurring = storage.stager_due(now)
        if not due:
            return False, next_due, next_recurring
        moved, next_due = storage.enqueue_due(now)
        created, next_recurring = self.engine.recurring.fire_due(now)
        return bool(moved or created), next_due, next_recurring

    async def tick(self) -> float:
        """Stage what is due; the seconds until the next thing is."""
        engine = self.engine
        staged, next_due, next_recurring = await self._io(self._stage, engine.now())
        if staged:
            self._on_enqueued()
        wait = self.interval
        for due in (next_due, next_recurring):
            if due is not None:
                wait = min(wait, max(0.0, due - engine.now()))
        return wait
