"""Group commit for async enqueues: coroutines that enqueue at once share one commit.

``aenqueue`` puts its job in the engine's :class:`GroupCommitter`. The first caller of a
batch yields to its event loop once, so that every coroutine ready to run now joins the
batch, then has it written; the others await a future. A lone caller waits for nobody
(its batch is its own job), and callers that come while a batch is written form the next.
The batch is stored with one commit (a job that fails alone, e.g. a missing parent, fails
only its caller; a failed commit fails every caller of the batch), and each future is
settled after the commit: a caller returns only once its job is durable.

The loop is not held while the database makes a commit wait. A batch is first offered to
``write_now``, which writes it on the loop's thread only if it can without waiting (SQLite:
the write lock is free; then the loop is held for that commit and its fsync, as short as
a plain ``enqueue()``) and otherwise declines; declined batches go to ``write_later``, a
coroutine (PostgreSQL: psycopg's async API; SQLite: a thread that may wait for the lock),
awaited by a task of the loop's own, so a caller that is cancelled cannot cancel a commit
others wait for. Each loop has its own queue and writes one batch at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence

from .model import NewJob

#: the most jobs one commit takes (the rest go in the next)
MAX_BATCH = 500

Result = tuple[int, bool] | BaseException
#: (jobs) -> one result per job, or None if writing them now would wait; raises when the
#: commit fails
WriteNow = Callable[[Sequence[NewJob]], Sequence[Result] | None]
#: (jobs) -> one result per job, without blocking the loop; raises when the commit fails
WriteLater = Callable[[Sequence[NewJob]], Awaitable[Sequence[Result]]]
#: (jobs) -> one result per job, from any thread, blocking (for close())
WriteBlocking = Callable[[Sequence[NewJob]], Sequence[Result]]
_Pending = tuple[NewJob, "asyncio.Future[tuple[int, bool]]"]


class GroupCommitter:
    """Stores jobs from any number of coroutines in shared commits, one queue per loop."""

    def __init__(
        self,
        write_now: WriteNow,
        write_later: WriteLater,
        write_blocking: WriteBlocking,
        after: Callable[[Sequence[NewJob], Sequence[Result]], None],
    ) -> None:
        self._write_now = write_now
        self._write_later = write_later
        self._write_blocking = write_blocking
        self._after = after  # run once per batch (e.g. poke local servers)
        #: jobs queued per event loop, while a caller or task of that loop is to write them
        self._pending: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        self._lock = threading.Lock()  # close() may run on another thread
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done

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
        if leader:  # the first caller of this batch has it written
            try:
                await asyncio.sleep(0)  # one turn of the loop: who is ready now joins
            finally:  # even if cancelled: the others wait for this commit
                self._lead(loop)
        return await future  # settled already if written at once: no further wait

    def close(self) -> None:
        """Write every job still queued (not a batch being written), from this thread."""
        with self._lock:
            queued = {loop: queue[:] for loop, queue in self._pending.items()}
            for queue in self._pending.values():
                queue.clear()  # whoever drains that loop finds nothing and stops
        for loop, queue in queued.items():
            for start in range(0, len(queue), MAX_BATCH):
                batch = queue[start : start + MAX_BATCH]
                self._finish(loop, batch, self._blocking(batch))

    def _take(self, loop: asyncio.AbstractEventLoop) -> list[_Pending]:
        """The next batch of ``loop``; none (and the loop's queue gone) when it is empty."""
        with self._lock:
            queue = self._pending.get(loop, [])
            batch = queue[:MAX_BATCH]
            del queue[:MAX_BATCH]
            if not batch:
                self._pending.pop(loop, None)
            return batch

    def _lead(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the first batch now if that waits for nothing, else leave it to a task."""
        batch = self._take(loop)
        if not batch:
            return
        try:
            results = self._write_now([job for job, _ in batch])
        except Exception as exc:  # the commit failed: every caller of the batch learns it
            results = [exc] * len(batch)
        if results is None:  # it would wait: a task writes it without holding the loop
            self._spawn(loop, batch)
            return
        self._finish(loop, batch, results)
        with self._lock:  # more than one commit takes: the rest after the loop breathes
            if not self._pending.get(loop):
                self._pending.pop(loop, None)
                return
        self._spawn(loop, [])

    def _spawn(self, loop: asyncio.AbstractEventLoop, first: list[_Pending]) -> None:
        task = loop.create_task(self._drain(loop, first))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        """Write this loop's batches one after the other until its queue is empty."""
        declined = bool(batch)  # the batch from _lead: write_now said it would wait
        try:
            if not batch:
                await asyncio.sleep(0)
                batch = self._take(loop)
            while batch:
                jobs = [job for job, _ in batch]
                try:
                    results = None if declined else self._write_now(jobs)
                    if results is None:
                        results = await self._write_later(jobs)
                except Exception as exc:
                    results = [exc] * len(batch)
                self._finish(loop, batch, results)
                batch, declined = self._take(loop), False
        except asyncio.CancelledError:  # the loop is shutting down: its callers too
            with self._lock:
                batch = batch + self._pending.pop(loop, [])
            _settle([(future, asyncio.CancelledError()) for _, future in batch])
            raise

    def _blocking(self, batch: list[_Pending]) -> Sequence[Result]:
        try:
            return self._write_blocking([job for job, _ in batch])
        except Exception as exc:
            return [exc] * len(batch)

    def _finish(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Pending], results: Sequence[Result]
    ) -> None:
        settled = [(future, result) for (_, future), result in zip(batch, results, strict=True)]
        if loop is _running_loop():
            _settle(settled)
        else:  # close() from another thread: one wake-up for the loop, not one per job
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, settled)
        with contextlib.suppress(Exception):  # a waker that fails must not fail enqueues
            self._after([job for job, _ in batch], results)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settle(settled: list[tuple[asyncio.Future[tuple[int, bool]], Result]]) -> None:
    for future, result in settled:
        if future.done():  # the caller was cancelled; its job may exist all the same
            continue
        if isinstance(result, asyncio.CancelledError):
            future.cancel()
        elif isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
