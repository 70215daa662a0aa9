"""Claims jobs for free slots and hands them to the executor.

It claims a batch as large as the free slots, and sleeps on the storage's waker (a
notification, or the poll interval) when nothing is due. Claiming may run one batch of
unwritten outcomes ahead of the writer (the two overlap), no more: beyond that,
Processing rows would pile up and widen what a crash makes run again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .duty import Io
from .executor import Executor
from .writer import MAX_BATCH, OutcomeWriter

if TYPE_CHECKING:
    from ..engine import JobEngine
    from ..storage import Waker

log = logging.getLogger(__name__)


class Producer:
    """The fetch loop of one server."""

    def __init__(
        self,
        engine: JobEngine,
        server_id: str,
        queues: Sequence[str],
        concurrency: int,
        io: Io,
        waker: Waker,
        executor: Executor,
        writer: OutcomeWriter,
        poll_interval: float,
    ) -> None:
        self.engine = engine
        self.server_id = server_id
        self.queues = list(queues)
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self._io = io
        self._waker = waker
        self._executor = executor
        self._writer = writer
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def slot_freed(self) -> None:
        """A run ended or outcomes were written: there may be room to claim more."""
        self._slot_free.set()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="diquis-fetch")

    async def stop(self) -> None:
        self._stopping = True
        self._waker.poke()
        self._slot_free.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def claim(self, limit: int) -> int:
        """Claim up to ``limit`` due jobs and start them; how many were claimed."""
        storage = self.engine.storage
        jobs = await self._io(storage.claim, self.server_id, self.queues, limit, self.engine.now())
        for job in jobs:
            self._executor.start_job(job)
        return len(jobs)

    async def _loop(self) -> None:
        while not self._stopping:
            backlog = self._writer.backlog
            running = len(self._executor)
            free = self.concurrency - running - max(0, backlog - self.concurrency)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                claimed = await self.claim(min(free, MAX_BATCH))
            except Exception:
                log.exception("claiming jobs failed; retrying in %.1fs", self.poll_interval)
                await asyncio.sleep(self.poll_interval)
                continue
            if not claimed:
                await self._waker.wait(self.poll_interval)
