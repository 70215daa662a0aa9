"""Claims jobs ahead of free slots and writes outcomes in the same round trip.

Each round trip to the store (:meth:`OutcomeWriter.write`) stores the outcomes gathered
since the last one and claims enough jobs to fill the free slots *and* a small local
buffer of claimed-not-started jobs — one transaction, one commit. A run that ends starts
the next buffered job at once, so the drain rate no longer hinges on the concurrency
times the round trips per second.

The buffer is bounded so one server cannot hoard a queue: it holds ``prefetch`` jobs
(by default the concurrency), or — when jobs end quickly — about what ended during the
last round trip twice over, at most :data:`AHEAD_MAX`. Long jobs thus keep a buffer of
``prefetch``; short ones get what it takes to hide the round trip. What a crash costs
does not grow with the buffer: buffered jobs never started, so the lifeline hands them
back once (late by the server timeout, not run twice); what runs again is what was
running and what had ended but was not committed yet — about two round trips' worth of
job time, however large the batches.
``prefetch=0`` claims only for free slots. Queues whose jobs have mutexes, limits or
partitions, or that have a queue limit, are never claimed ahead: for them only the free
slots are claimed (``gated_limit``), so every such job starts at once and the rules
count only runs that really run.

With outcomes to write but no room to claim (all slots busy, buffer full), the write
waits up to :data:`LINGER` seconds for a run to end, so it can carry a claim too.

When nothing is due it sleeps on the storage's waker (a notification, or the poll
interval); a run's outcome wakes it too, to write it.
"""

from __future__ import annotations

import asyncio
import contextlib
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
# most jobs a server buffers when jobs end fast. A round trip's cost is mostly per job
# (rows written), with a fixed part (parse, plan, commit) that larger batches share: 250
# drained 20-70% faster than 100 on PostgreSQL, 15-25% on SQLite, in same-minute A/Bs
# (batches of ~85 instead of ~45: the next claim starts while the last one's jobs are
# still buffered).
AHEAD_MAX = 250
LINGER = 0.002  # seconds outcomes may wait for room to claim in the same round trip


class Producer:
    """The fetch-and-write loop of one server."""

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
        prefetch: int | None = None,
    ) -> None:
        self.engine = engine
        self.server_id = server_id
        self.queues = list(queues)
        self.concurrency = concurrency
        self.prefetch = concurrency if prefetch is None else prefetch
        self.poll_interval = poll_interval
        self._io = io
        self._waker = waker
        self._executor = executor
        self._writer = writer
        self._ahead = self.prefetch  # the buffer's bound now (see the module's docstring)
        self._nudged = asyncio.Event()
        self._idle = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def slot_freed(self) -> None:
        """A run ended, an outcome waits, or the buffer shrank: time for a round trip."""
        self._nudged.set()
        if self._idle:
            self._waker.poke()

    async def start(self) -> None:
        self._stopping = False
        self._writer.drive(self.slot_freed)
        self._task = asyncio.create_task(self._loop(), name="diquis-fetch")

    async def stop(self) -> None:
        """Stop claiming; the writer's own loop writes what still finishes."""
        self._stopping = True
        self._waker.poke()
        self._nudged.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._writer.drive(None)

    def room(self) -> tuple[int, int]:
        """(jobs to claim now, of which careful ones at most): the buffer's room + free slots.

        Less when more outcomes wait than one write takes: claiming must not outrun
        writing, or Processing rows pile up and widen what a crash makes run again.
        """
        running = len(self._executor)
        buffered = self._executor.buffered
        free = max(0, self.concurrency - running - buffered)
        ahead = max(0, self._ahead - buffered)
        behind = max(0, self._writer.backlog - MAX_BATCH)
        return max(0, min(free + ahead, MAX_BATCH) - behind), max(0, free - behind)

    async def claim(self, limit: int) -> int:
        """Claim up to ``limit`` due jobs and start them (inline mode); how many were claimed."""
        storage = self.engine.storage
        jobs = await self._io(storage.claim, self.server_id, self.queues, limit, self.engine.now())
        self._executor.offer(jobs)
        return len(jobs)

    async def _loop(self) -> None:
        delay = 0.1
        loop = asyncio.get_running_loop()
        lingering: float | None = None
        while not self._stopping:
            self._nudged.clear()
            limit, free = self.room()
            if limit <= 0:
                if not self._writer.pending:
                    await self._nudged.wait()
                    continue
                if lingering is None:
                    lingering = loop.time() + LINGER
                left = lingering - loop.time()
                if left > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._nudged.wait(), left)
                    continue
            lingering = None
            batch = self._writer.take()
            if self.prefetch:
                # about what ended during the last round trip, twice: enough to hide the next
                self._ahead = max(self.prefetch, min(AHEAD_MAX, 2 * len(batch)))
            try:
                claimed = await self._writer.write(batch, self.queues, limit, free)
            except Exception:
                log.exception(
                    "writing %d job outcomes and claiming jobs failed; retrying in %.1fs",
                    len(batch),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            if claimed:
                self._executor.offer(claimed)
            if len(claimed) < limit and not self._writer.pending and not self._stopping:
                # nothing more is due now: sleep until work may have come (or an outcome)
                self._idle = True
                try:
                    await self._waker.wait(self.poll_interval)
                finally:
                    self._idle = False
