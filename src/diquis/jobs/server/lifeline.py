"""Rescues the jobs of servers that stopped heart-beating.

A server that has not beaten for ``server_timeout`` seconds is dead: its Processing jobs
go back to their queues (the storage does that in one statement, safe to run from every
server at once). The server looks every heartbeat interval (at least every
``scheduler_interval``), so a dead server's jobs go back within ``server_timeout`` plus one
heartbeat interval of its last beat — 17 s by default — for one transaction every 2 s
instead of every second on an idle server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .duty import Io, Periodic

if TYPE_CHECKING:
    from ..engine import JobEngine

log = logging.getLogger(__name__)


class Lifeline(Periodic):
    """Requeues the jobs of dead servers every ``interval`` seconds."""

    name = "lifeline"

    def __init__(
        self,
        engine: JobEngine,
        io: Io,
        interval: float,
        server_timeout: float,
        on_enqueued: Callable[[], None],
    ) -> None:
        super().__init__(interval)
        self.engine = engine
        self.server_timeout = server_timeout
        self._io = io
        self._on_enqueued = on_enqueued

    async def tick(self) -> float:
        """Rescue once; the seconds until the next round."""
        rescued = await self._io(self.engine.storage.rescue, self.engine.now(), self.server_timeout)
        if rescued:
            log.warning("requeued %d jobs of servers that stopped heart-beating", len(rescued))
            self._on_enqueued()
        return self.interval
