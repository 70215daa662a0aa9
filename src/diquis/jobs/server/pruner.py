"""Deletes finished jobs whose time to be kept is over (Hangfire's expiration)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .duty import Io, Periodic

if TYPE_CHECKING:
    from ..engine import JobEngine

log = logging.getLogger(__name__)


class Pruner(Periodic):
    """Expires finished jobs every ``interval`` seconds, first at start."""

    name = "pruner"

    def __init__(self, engine: JobEngine, io: Io, interval: float) -> None:
        super().__init__(interval)
        self.engine = engine
        self._io = io

    async def tick(self) -> float:
        """Expire once; the seconds until the next round."""
        expired = await self._io(self.engine.storage.expire, self.engine.now())
        if expired:
            log.info("expired %d finished jobs", expired)
        return self.interval
