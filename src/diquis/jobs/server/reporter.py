"""Writes what running jobs report (progress, log lines), coalesced.

A job may call ``report_progress`` thousands of times a second; its context keeps only
the latest report and the new lines, and this duty writes them for every run of the
server in one transaction, at most every ``interval`` seconds — and once more when a run
ends, so the last word of a job is never lost. With no run in progress it sleeps until one
starts (:meth:`ProgressReporter.run_started`), so an idle server does not wake for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..context import JobContext
from ..model import ProgressUpdate
from .duty import Io, Periodic

if TYPE_CHECKING:
    from ..engine import JobEngine

log = logging.getLogger(__name__)
IDLE_WAIT = 3600.0  # seconds between rounds while no run is in progress (a run wakes it)


class ProgressReporter(Periodic):
    """Stores the progress and log lines of one server's runs."""

    name = "reporter"

    def __init__(
        self,
        engine: JobEngine,
        io: Io,
        contexts: Callable[[], list[JobContext]],
        interval: float = 0.5,
    ) -> None:
        super().__init__(interval)
        self.engine = engine
        self._io = io
        self._contexts = contexts
        self._ended: list[JobContext] = []
        self._idle = False  # sleeping until a run starts

    def run_started(self) -> None:
        """A run began (on the event loop): an idle reporter resumes its rounds."""
        if self._idle:
            self._idle = False
            self._run_now()

    def run_ended(self, context: JobContext) -> None:
        """Write what ``context`` still holds with the next round (on the event loop)."""
        self._ended.append(context)

    def _collect(self) -> list[ProgressUpdate]:
        ended, self._ended = self._ended, []
        updates = [c.take_progress() for c in (*self._contexts(), *ended)]
        return [u for u in updates if u is not None]

    async def tick(self) -> float:
        updates = self._collect()
        if updates:
            await self._io(self.engine.storage.save_progress, updates)
        if not self._contexts() and not self._ended:
            self._idle = True
            return IDLE_WAIT
        return self.interval

    async def stop(self) -> None:
        await super().stop()
        updates = self._collect()
        if updates:
            try:
                await self._io(self.engine.storage.save_progress, updates)
            except Exception:
                log.exception("could not store the last progress of %d runs", len(updates))
