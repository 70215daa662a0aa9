"""Group commit for async enqueues: coroutines that enqueue at once share one commit.

``aenqueue`` puts its job in the engine's :class:`GroupCommitter`. The first caller of a
batch yields to its event loop once, so that every coroutine ready to run now joins the
batch, then writes it; the others await a future. A lone caller waits for nobody (its
batch is its own job), and callers that come while a batch is written form the next.
The batch is stored with :meth:`Storage.create_jobs` in one transaction (a job that
fails alone, e.g. a missing parent, fails only its caller; a failed commit fails every
caller of the batch), and each future is settled after the commit: a caller returns only
once its job is durable.

The write runs on the event loop's thread, as a plain ``enqueue()`` call from async code
would: that is what makes a lone ``aenqueue`` as fast as ``enqueue`` (no thread hop
there and back) — the loop is held for one commit per batch, not one per job (and, like
``enqueue()``, for as long as the database makes that commit wait: another process's
SQLite write lock, a PostgreSQL row lock on a parent or unique key). Each event loop has
its own queue, so callers on one loop never wait for another loop to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence

from .model import NewJob

#: the most jobs one commit takes (the rest go in the next)
MAX_BATCH = 500

Result = tuple[int, bool] | BaseException
#: (jobs) -> one result per job; raises when the commit fails
Write = Callable[[Sequence[NewJob]], Sequence[Result]]
_Pending = tuple[NewJob, "asyncio.Future[tuple[int, bool]]"]


class GroupCommitter:
    """Stores jobs from any number of coroutines in shared commits, one queue per loop."""

    def __init__(
        self, write: Write, after: Callable[[Sequence[NewJob], Sequence[Result]], None]
    ) -> None:
        self._write = write
        self._after = after  # run once per batch (e.g. poke local servers)
        #: jobs queued per event loop, while that loop has a write scheduled
        self._pending: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        self._lock = threading.Lock()  # close() may run on another thread

    async def submit(self, job: NewJob) -> tuple[int, bool]:
        """Store ``job`` in the next commit; (id, created?) once that commit is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, bool]] = loop.create_future()
        with self._lock:
            queue = self._pending.get(loop)
            leader = queue is None
            if queue is None:
                queue = self._pending[loop] = []
            queue.append((job, future))
        if leader:  # the first caller of this batch writes it
            try:
                await asyncio.sleep(0)  # one turn of the loop: who is ready now joins
            finally:  # even if cancelled: the others wait for this commit
                self._drain(loop)
        return await future  # the leader's is settled already: no further wait

    def close(self) -> None:
        """Write every job still queued, from the caller's thread."""
        with self._lock:
            queued, self._pending = self._pending, {}
        for loop, queue in queued.items():
            for start in range(0, len(queue), MAX_BATCH):
                self._commit(loop, queue[start : start + MAX_BATCH])

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            queue = self._pending.get(loop, [])
            batch = queue[:MAX_BATCH]
            del queue[:MAX_BATCH]
            if queue:  # more than one commit takes: the rest after the loop breathes
                loop.call_soon(self._drain, loop)
            else:
                self._pending.pop(loop, None)
        if batch:
            self._commit(loop, batch)

    def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        jobs = [job for job, _ in batch]
        try:
            results: Sequence[Result] = self._write(jobs)
        except Exception as exc:  # the commit failed: every caller of the batch learns it
            results = [exc] * len(batch)
        settled = [(future, result) for (_, future), result in zip(batch, results, strict=True)]
        if loop is _running_loop():
            _settle(settled)
        else:  # close() from another thread: one wake-up for the loop, not one per job
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, settled)
        with contextlib.suppress(Exception):  # a waker that fails must not fail enqueues
            self._after(jobs, results)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settle(settled: list[tuple[asyncio.Future[tuple[int, bool]], Result]]) -> None:
    for future, result in settled:
        if future.done():  # the caller was cancelled; its job may exist all the same
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
