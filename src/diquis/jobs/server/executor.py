"""Runs claimed jobs: one asyncio task per run, sync targets in their own thread pool.

Each run goes through the engine's filters and the target's activation and ends as an
:class:`Outcome` handed to ``on_outcome`` — or as nothing when it was cancelled (deleted,
taken over, or the server shut down: then someone else owns the job's state). Runs are
keyed by (job id, attempt): a deleted job's run may still be stopping when the same job,
requeued, starts again here, and each must be found and cancelled on its own.

Claimed jobs may wait in a small local buffer (:meth:`Executor.offer`) until a slot is
free: a run that ends starts the next buffered job at once, without a round trip to the
store. Buffered jobs are Processing rows of this server like the running ones — they are
in :meth:`Executor.runs` for the heartbeat, :meth:`Executor.cancel` drops them, and a
graceful stop hands them back (:meth:`Executor.take_buffered`). The buffer starts jobs by
queue priority (the server's first queue first), then in claim order.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..context import JobContext, reset_current, set_current
from ..errors import UnknownTargetError
from ..model import ClaimedJob, Outcome
from ..registry import Target
from ..retry import NO_RETRY
from ..serialization import loads_args
from ..states import State
from . import outcomes

if TYPE_CHECKING:
    from ..engine import JobEngine

log = logging.getLogger(__name__)
Run = tuple[int, int]  # (job id, attempt)


@dataclass
class _Running:
    job: ClaimedJob
    context: JobContext
    task: asyncio.Task[None]


class Executor:
    """The runs in progress on one server, and how each ends."""

    def __init__(
        self,
        engine: JobEngine,
        server_id: str,
        concurrency: int,
        *,
        queues: Sequence[str] = (),
        on_outcome: Callable[[Outcome], None],
        on_slot_free: Callable[[], None],
        on_retry_scheduled: Callable[[], None],
        on_run_end: Callable[[JobContext], None] = lambda context: None,
        on_run_start: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.server_id = server_id
        self.concurrency = concurrency
        self.grace = 15.0  # seconds :meth:`stop` lets runs finish before cancelling them
        self.leftovers: list[ClaimedJob] = []  # runs :meth:`stop` had to cancel
        self._running: dict[Run, _Running] = {}
        self._buffered: dict[Run, ClaimedJob] = {}
        # one line per queue rank (the last for a queue the server was not given); a job
        # dropped from the buffer stays in its line until reached, then is skipped
        self._rank = {q: i for i, q in enumerate(queues)}
        self._lines: list[deque[ClaimedJob]] = [deque() for _ in range(len(self._rank) + 1)]
        self._threads = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="diquis-job")
        self._on_outcome = on_outcome
        self._on_slot_free = on_slot_free
        self._on_retry_scheduled = on_retry_scheduled
        self._on_run_end = on_run_end
        self._on_run_start = on_run_start

    def __len__(self) -> int:
        return len(self._running)

    @property
    def buffered(self) -> int:
        """Claimed jobs waiting here for a free slot."""
        return len(self._buffered)

    def contexts(self) -> list[JobContext]:
        """The contexts of the runs in progress."""
        return [r.context for r in list(self._running.values())]

    def runs(self) -> list[Run]:
        """The (job id, attempt) of every run this server owns: running or buffered.

        Safe from any thread (the heartbeat's).
        """
        return list(self._running) + list(self._buffered)

    def running(self) -> list[Run]:
        """The (job id, attempt) of the runs in progress (not the buffered ones)."""
        return list(self._running)

    def offer(self, jobs: Sequence[ClaimedJob]) -> None:
        """Take claimed jobs: start them while slots are free, buffer the rest."""
        rank = self._rank
        last = len(self._lines) - 1
        for job in jobs:
            self._buffered[(job.id, job.attempt)] = job
            self._lines[rank.get(job.queue, last)].append(job)
        self._start_buffered()

    def take_buffered(self) -> list[ClaimedJob]:
        """Empty the buffer (a stopping server hands these jobs back); in start order."""
        jobs: list[ClaimedJob] = []
        for line in self._lines:
            while line:
                job = line.popleft()
                if self._buffered.pop((job.id, job.attempt), None) is not None:
                    jobs.append(job)
        return jobs

    def _start_buffered(self) -> None:
        buffered = self._buffered
        while buffered and len(self._running) < self.concurrency:
            for line in self._lines:
                while line:
                    job = line.popleft()
                    if buffered.pop((job.id, job.attempt), None) is not None:
                        break
                else:
                    continue
                self.start_job(job)
                break

    def start_job(self, job: ClaimedJob) -> None:
        """Start running ``job`` (on the running event loop)."""
        context = JobContext(
            job_id=job.id,
            target=job.target,
            queue=job.queue,
            attempt=job.attempt,
            retry_count=job.retry_count,
            server_id=self.server_id,
        )
        task = asyncio.create_task(self._perform(job, context), name=f"diquis-job-{job.id}")
        self._running[(job.id, job.attempt)] = _Running(job, context, task)
        self._on_run_start()

    async def wait_all(self) -> None:
        """Until every run in progress, and every buffered job, has ended."""
        while self._running:
            await asyncio.gather(*(r.task for r in list(self._running.values())))

    def cancel(self, runs: list[Run], why: str) -> None:
        """Cancel these runs (or drop them from the buffer), if they are still here."""
        dropped = False
        for run in runs:
            job_id, attempt = run
            if self._buffered.pop(run, None) is not None:
                log.info(
                    "job %d (run %d) was deleted or taken over before it started; dropped",
                    job_id,
                    attempt,
                )
                dropped = True
                continue
            running = self._running.get(run)
            if running is None:
                continue
            log.info("job %d (run %d) was deleted or taken over; cancelling it", job_id, attempt)
            running.context.cancel(why)
            running.task.cancel()
        if dropped:
            self._on_slot_free()

    async def start(self) -> None:
        """Nothing to start: runs begin with :meth:`start_job`."""

    async def stop(self) -> None:
        """Let runs finish within :attr:`grace`, cancel the rest into :attr:`leftovers`."""
        running = [r.task for r in self._running.values()]
        if running:
            log.info("waiting up to %.1fs for %d running jobs", self.grace, len(running))
            await asyncio.wait(running, timeout=self.grace)
        waiting = self.take_buffered()  # a server hands these back before it stops this
        leftovers = list(self._running.values())
        for r in leftovers:
            r.context.cancel("server shutting down")
            r.task.cancel()
        if leftovers:
            await asyncio.wait([r.task for r in leftovers], timeout=1.0)
        self.leftovers = [r.job for r in leftovers] + waiting
        self.close()

    def close(self) -> None:
        """Let go of the job threads (a sync job still running keeps its own)."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _perform(self, job: ClaimedJob, context: JobContext) -> None:
        started = time.perf_counter()
        outcome: Outcome | None = None
        try:
            outcome = await self._execute(job, context, started)
        except asyncio.CancelledError:
            outcome = None  # deleted, lost, or shutting down: someone else owns the state now
        finally:
            self._running.pop((job.id, job.attempt), None)
            if self._buffered:
                self._start_buffered()
            if outcome is None:
                self._on_run_end(context)  # cancelled: its last report goes on its own
            self._on_slot_free()
        if outcome is not None:
            progress = context.take_progress()
            if progress is not None:
                outcome = dataclasses.replace(outcome, progress=progress)
            if outcome.state is State.SCHEDULED:
                self._on_retry_scheduled()
            self._on_outcome(outcome)

    async def _execute(self, job: ClaimedJob, context: JobContext, started: float) -> Outcome:
        engine = self.engine
        try:
            target = engine.registry.by_name(job.target)
            args, kwargs = loads_args(job.args, job.kwargs)
        except (UnknownTargetError, ValueError) as exc:
            return outcomes.failed(job, NO_RETRY, exc, started, engine.now())
        error: BaseException | None = None
        result: Any = None
        token = set_current(context)
        try:
            for f in engine.filters:
                await f.before_perform(context)
            if target.owner is None:  # a plain function: no instance to build around it
                result = await self._call(target, target.func, args, kwargs)
            else:
                async with target.activated(engine.activator) as fn:
                    result = await self._call(target, fn, args, kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
        finally:
            reset_current(token)
        for f in engine.filters:
            try:
                await f.after_perform(context, error)
            except Exception:
                log.exception("job filter %r failed after job %d", f, job.id)
        if error is not None:
            policy = target.retry or engine.retry
            return outcomes.failed(job, policy, error, started, engine.now())
        return outcomes.succeeded(job, result, started, engine.now(), engine.succeeded_ttl)

    async def _call(
        self, target: Target, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        if target.is_async:
            return await fn(*args, **kwargs)
        call = contextvars.copy_context().run
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._threads, lambda: call(fn, *args, **kwargs))
        if inspect.isawaitable(result):
            result = await result
        return result
