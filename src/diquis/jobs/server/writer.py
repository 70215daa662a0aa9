"""Writes run outcomes in batches (group commit), with the next claim when one is asked.

Whatever finished while the last write was in flight goes in the next one. While the
producer runs, it drives the writes (:meth:`OutcomeWriter.write`): each round trip stores
the outcomes gathered so far *and* claims the next jobs, in one transaction. Otherwise
(before start, while the server stops, in inline mode) the writer's own loop flushes
outcomes as they come. One write is in flight at a time. A failed write is retried with
backoff; the engine's filters hear of each state change once it is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..model import ClaimedJob, Outcome
from ..states import State
from .duty import Io

if TYPE_CHECKING:
    from ..engine import JobEngine

log = logging.getLogger(__name__)
MAX_BATCH = 200


class OutcomeWriter:
    """Stores outcomes for one server; :attr:`backlog` is how many are not stored yet."""

    def __init__(
        self,
        engine: JobEngine,
        server_id: str,
        io: Io,
        *,
        on_enqueued: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.server_id = server_id
        self._io = io
        self._pending: list[Outcome] = []
        self._writing = 0
        self._ready = asyncio.Event()
        self._one_at_a_time = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._on_enqueued = on_enqueued
        #: called for each new outcome while someone else drives the writes (the producer)
        self.driver: Callable[[], None] | None = None

    @property
    def backlog(self) -> int:
        """Outcomes waiting or being written."""
        return len(self._pending) + self._writing

    @property
    def pending(self) -> int:
        """Outcomes waiting for the next write."""
        return len(self._pending)

    def add(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for the next write (on the event loop)."""
        self._pending.append(outcome)
        if self.driver is not None:
            self.driver()
        else:
            self._ready.set()

    def drive(self, driver: Callable[[], None] | None) -> None:
        """Let ``driver`` decide when outcomes are written (None: the writer's own loop)."""
        self.driver = driver
        if driver is None and self._pending:
            self._ready.set()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="diquis-write")

    async def stop(self) -> None:
        """Write what is left, then end (a write in flight is waited for, not cancelled)."""
        self._stopping = True
        self._ready.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _loop(self) -> None:
        while not self._stopping:
            await self._ready.wait()
            self._ready.clear()
            if self.driver is None:
                await self.flush()

    def take(self) -> list[Outcome]:
        """The next batch of pending outcomes (given back by :meth:`write` if it fails)."""
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        return batch

    async def write(
        self,
        batch: list[Outcome],
        queues: Sequence[str] = (),
        limit: int = 0,
        gated_limit: int | None = None,
    ) -> list[ClaimedJob]:
        """Store ``batch`` and claim up to ``limit`` jobs in the same transaction.

        On failure the batch goes back to the front of the pending outcomes and the
        error is raised.
        """
        async with self._one_at_a_time:
            self._writing = len(batch)
            try:
                claimed = await self._io(self._store, batch, queues, limit, gated_limit)
            except BaseException:
                self._pending[:0] = batch
                raise
            finally:
                self._writing = 0
        if batch:
            self._written(batch, claimed_too=limit > 0)
        return claimed

    def _store(
        self,
        batch: list[Outcome],
        queues: Sequence[str],
        limit: int,
        gated_limit: int | None,
    ) -> list[ClaimedJob]:
        storage = self.engine.storage
        # a run's last progress first, so a finished job never shows an older report
        last_words = [o.progress for o in batch if o.progress is not None]
        if last_words:
            storage.save_progress(last_words)
        _, claimed = storage.finish_and_claim(
            self.server_id, batch, queues, limit, self.engine.now(), gated_limit
        )
        return claimed

    def _written(self, batch: list[Outcome], claimed_too: bool) -> None:
        filters = self.engine.filters
        if filters:
            for outcome in batch:
                for f in filters:
                    try:
                        f.on_state_change(outcome.job_id, outcome.state, outcome.reason)
                    except Exception:
                        log.exception("job filter %r failed on a state change", f)
        # continuations may have been enqueued; a claim in the same transaction saw them
        if not claimed_too and any(o.state is not State.SCHEDULED for o in batch):
            self._on_enqueued()

    async def flush(self) -> None:
        """Write every pending outcome now."""
        delay = 0.1
        while self._pending:
            try:
                await self.write(self.take())
            except Exception:
                log.exception("writing job outcomes failed; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
