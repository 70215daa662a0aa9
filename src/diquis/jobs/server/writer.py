"""Writes run outcomes in batches (group commit).

Whatever finished while the last write was in flight goes in the next one. A failed write
is retried with backoff; the engine's filters hear of each state change once it is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..model import Outcome
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
        on_written: Callable[[], None],
        on_enqueued: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.server_id = server_id
        self._io = io
        self._pending: list[Outcome] = []
        self._writing = 0
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_written = on_written
        self._on_enqueued = on_enqueued

    @property
    def backlog(self) -> int:
        """Outcomes waiting or being written."""
        return len(self._pending) + self._writing

    def add(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for the next write (on the event loop)."""
        self._pending.append(outcome)
        self._ready.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="diquis-write")

    async def stop(self) -> None:
        """Write what is left, then end."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            await self.flush()

    def _write(self, batch: list[Outcome]) -> None:
        # a run's last progress first, so a finished job never shows an older report
        last_words = [o.progress for o in batch if o.progress is not None]
        if last_words:
            self.engine.storage.save_progress(last_words)
        self.engine.storage.finish(self.server_id, batch, self.engine.now())

    async def flush(self) -> None:
        """Write every pending outcome now."""
        delay = 0.1
        engine = self.engine
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self._writing = len(batch)
            try:
                await self._io(self._write, batch)
            except Exception:
                log.exception("writing %d job outcomes failed; retrying", len(batch))
                self._pending[:0] = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            finally:
                self._writing = 0
                self._on_written()
            for outcome in batch:
                for f in engine.filters:
                    try:
                        f.on_state_change(outcome.job_id, outcome.state, outcome.reason)
                    except Exception:
                        log.exception("job filter %r failed on a state change", f)
            if any(o.state is not State.SCHEDULED for o in batch):
                self._on_enqueued()  # continuations may have been enqueued
