"""Runs claimed jobs: one asyncio task per run, sync targets in their own thread pool.

Each run goes through the engine's filters and the target's activation and ends as an
:class:`Outcome` handed to ``on_outcome`` — or as nothing when it was cancelled (deleted,
taken over, or the server shut down: then someone else owns the job's state). Runs are
keyed by (job id, attempt): a deleted job's run may still be stopping when the same job,
requeued, starts again here, and each must be found and cancelled on its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..context import JobContext, reset_current, set_current
from ..errors import UnknownTargetError
from ..model import ClaimedJob, Outcome
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
        on_outcome: Callable[[Outcome], None],
        on_slot_free: Callable[[], None],
        on_retry_scheduled: Callable[[], None],
        on_run_end: Callable[[JobContext], None] = lambda context: None,
    ) -> None:
        self.engine = engine
        self.server_id = server_id
        self.grace = 15.0  # seconds :meth:`stop` lets runs finish before cancelling them
        self.leftovers: list[ClaimedJob] = []  # runs :meth:`stop` had to cancel
        self._running: dict[Run, _Running] = {}
        self._threads = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="diquis-job")
        self._on_outcome = on_outcome
        self._on_slot_free = on_slot_free
        self._on_retry_scheduled = on_retry_scheduled
        self._on_run_end = on_run_end

    def __len__(self) -> int:
        return len(self._running)

    def contexts(self) -> list[JobContext]:
        """The contexts of the runs in progress."""
        return [r.context for r in list(self._running.values())]

    def runs(self) -> list[Run]:
        """The (job id, attempt) of every run in progress (safe from any thread)."""
        return list(self._running)

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

    async def wait_all(self) -> None:
        """Until every run in progress has ended."""
        await asyncio.gather(*(r.task for r in list(self._running.values())))

    def cancel(self, runs: list[Run], why: str) -> None:
        """Cancel these runs, if they are still in progress here."""
        for job_id, attempt in runs:
            running = self._running.get((job_id, attempt))
            if running is None:
                continue
            log.info("job %d (run %d) was deleted or taken over; cancelling it", job_id, attempt)
            running.context.cancel(why)
            running.task.cancel()

    async def start(self) -> None:
        """Nothing to start: runs begin with :meth:`start_job`."""

    async def stop(self) -> None:
        """Let runs finish within :attr:`grace`, cancel the rest into :attr:`leftovers`."""
        running = [r.task for r in self._running.values()]
        if running:
            log.info("waiting up to %.1fs for %d running jobs", self.grace, len(running))
            await asyncio.wait(running, timeout=self.grace)
        leftovers = list(self._running.values())
        for r in leftovers:
            r.context.cancel("server shutting down")
            r.task.cancel()
        if leftovers:
            await asyncio.wait([r.task for r in leftovers], timeout=1.0)
        self.leftovers = [r.job for r in leftovers]
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
            if outcome is None:
                self._on_run_end(context)  # cancelled: its last report goes on its own
            self._on_slot_free()
        if outcome is not None:
            outcome = dataclasses.replace(outcome, progress=context.take_progress())
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
            async with target.activated(engine.activator) as fn:
                if target.is_async:
                    result = await fn(*args, **kwargs)
                else:
                    call = contextvars.copy_context().run
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(
                        self._threads, lambda: call(fn, *args, **kwargs)
                    )
                    if inspect.isawaitable(result):
                        result = await result
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
