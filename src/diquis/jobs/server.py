"""The job server: fetches, runs and records jobs, and keeps the engine's clocks ticking.

One asyncio task claims batches for free slots and wakes on the storage's signal; each
job runs as a task (sync targets in a thread pool); outcomes are written in batches
(group commit: whatever finished while the last write was in flight goes in the next).
Heartbeats run in their own thread so a busy or blocked loop never looks dead.
Housekeeping — scheduled jobs, recurring jobs, rescuing jobs of dead servers, expiry —
runs on every server; the storage makes that safe to do concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .context import JobContext, reset_current, set_current
from .errors import JobArgumentError, UnknownTargetError
from .model import ClaimedJob, HistoryEntry, Outcome
from .retry import NO_RETRY
from .serialization import dumps_value, loads_args
from .states import State

if TYPE_CHECKING:
    from .engine import JobEngine
    from .registry import Target

log = logging.getLogger("diquis.jobs")
T = TypeVar("T")
MAX_BATCH = 200


@dataclass
class _Running:
    job: ClaimedJob
    context: JobContext
    task: asyncio.Task[None]


class Server:
    """Runs jobs from ``queues`` (first = highest priority) with ``concurrency`` slots."""

    def __init__(
        self,
        engine: JobEngine,
        *,
        queues: Sequence[str] = ("default",),
        concurrency: int = 10,
        name: str | None = None,
        heartbeat_interval: float = 2.0,
        server_timeout: float = 15.0,
        shutdown_timeout: float = 15.0,
        poll_interval: float = 1.0,
        scheduler_interval: float = 1.0,
        expire_interval: float = 60.0,
    ) -> None:
        if isinstance(queues, str):
            queues = [q for q in queues.split(",") if q]
        if not queues or not all(isinstance(q, str) and q.strip() for q in queues):
            raise ValueError(f"queues must be a non-empty list of names, got {queues!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if server_timeout <= heartbeat_interval:
            raise ValueError("server_timeout must be longer than heartbeat_interval")
        self.engine = engine
        self.queues = [q.strip() for q in queues]
        self.concurrency = concurrency
        host = socket.gethostname()
        self.id = name or f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.hostname = host
        self.heartbeat_interval = heartbeat_interval
        self.server_timeout = server_timeout
        self.shutdown_timeout = shutdown_timeout
        self.poll_interval = poll_interval
        self.scheduler_interval = scheduler_interval
        self.expire_interval = expire_interval
        # keyed by (job id, attempt): a deleted job's run may still be stopping when the same
        # job, requeued, starts again here; each run must be found and cancelled on its own
        self._running: dict[tuple[int, int], _Running] = {}
        self._pending: list[Outcome] = []
        self._writing = 0
        self._io_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="diquis-io")
        self._job_threads = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="diquis-job"
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._started = False
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._waker = engine.storage.waker(self.queues)

    # -- helpers ------------------------------------------------------------------------

    def _now(self) -> float:
        return self.engine.now()

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io_pool, fn, *args)

    @property
    def running_jobs(self) -> list[int]:
        """Ids of the jobs this server is running now."""
        return [job_id for job_id, _ in self._running]

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Register, then start fetching, housekeeping and heart-beating."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._slot_free = asyncio.Event()
        self._outcome_ready = asyncio.Event()
        self._housekeeping_now = asyncio.Event()
        await self._io(self._register)
        self._started = True
        self.engine.add_waker(self._waker)
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name=f"diquis-heartbeat-{self.id}", daemon=True
        )
        self._heartbeat_thread.start()
        self._tasks = [
            asyncio.create_task(self._fetch_loop(), name="diquis-fetch"),
            asyncio.create_task(self._write_loop(), name="diquis-write"),
            asyncio.create_task(self._housekeeping_loop(), name="diquis-housekeeping"),
        ]
        log.info(
            "job server %s started: queues=%s concurrency=%d",
            self.id,
            self.queues,
            self.concurrency,
        )

    def _register(self) -> None:
        self.engine.storage.register_server(
            self.id, self.hostname, os.getpid(), self.queues, self.concurrency, self._now()
        )

    async def stop(self, timeout: float | None = None) -> None:
        """Stop fetching, let running jobs finish within ``timeout``, hand the rest back."""
        if not self._started or self._stopping:
            return
        self._stopping = True
        self._waker.poke()
        self._slot_free.set()
        fetch, writer, housekeeping = self._tasks
        housekeeping.cancel()
        await asyncio.gather(fetch, housekeeping, return_exceptions=True)
        limit = self.shutdown_timeout if timeout is None else timeout
        running = [r.task for r in self._running.values()]
        if running:
            log.info("waiting up to %.1fs for %d running jobs", limit, len(running))
            await asyncio.wait(running, timeout=limit)
        leftovers = list(self._running.values())
        for r in leftovers:
            r.context.cancel("server shutting down")
            r.task.cancel()
        if leftovers:
            await asyncio.wait([r.task for r in leftovers], timeout=1.0)
            handed = await self._io(
                self.engine.storage.release,
                self.id,
                [(r.job.id, r.job.attempt) for r in leftovers],
                self._now(),
                f"Server {self.id} shut down before the job finished; job requeued",
            )
            log.info("handed %d unfinished jobs back to their queues", handed)
        self._outcome_ready.set()
        await self._flush()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        self._heartbeat_stop.set()
        if self._heartbeat_thread is not None:
            await asyncio.to_thread(self._heartbeat_thread.join, 5.0)
        await self._io(self.engine.storage.remove_server, self.id)
        self.engine.remove_waker(self._waker)
        await self._waker.close()
        self._io_pool.shutdown(wait=False)
        self._job_threads.shutdown(wait=False, cancel_futures=True)
        log.info("job server %s stopped", self.id)

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully (the ``diquis worker`` loop)."""
        asyncio.run(self._run_until_signalled())

    async def _run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("signal received: stopping (up to %.1fs for running jobs)", self.shutdown_timeout)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await self.stop()

    # -- fetching -----------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        storage = self.engine.storage
        while not self._stopping:
            # claiming may run one batch of unwritten outcomes ahead of the writer (the two
            # overlap), no more: beyond that, Processing rows would pile up and widen what
            # a crash makes run again
            backlog = len(self._pending) + self._writing
            free = self.concurrency - len(self._running) - max(0, backlog - self.concurrency)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                jobs = await self._io(
                    storage.claim, self.id, self.queues, min(free, MAX_BATCH), self._now()
                )
            except Exception:
                log.exception("claiming jobs failed; retrying in %.1fs", self.poll_interval)
                await asyncio.sleep(self.poll_interval)
                continue
            if not jobs:
                await self._waker.wait(self.poll_interval)
                continue
            for job in jobs:
                self._start_job(job)

    def _start_job(self, job: ClaimedJob) -> None:
        context = JobContext(
            job_id=job.id,
            target=job.target,
            queue=job.queue,
            attempt=job.attempt,
            retry_count=job.retry_count,
            server_id=self.id,
        )
        task = asyncio.create_task(self._perform(job, context), name=f"diquis-job-{job.id}")
        self._running[(job.id, job.attempt)] = _Running(job, context, task)

    # -- running ------------------------------------------------------------------------

    async def _perform(self, job: ClaimedJob, context: JobContext) -> None:
        started = time.perf_counter()
        try:
            outcome = await self._execute(job, context, started)
        except asyncio.CancelledError:
            outcome = None  # deleted, lost, or shutting down: someone else owns the state now
        finally:
            self._running.pop((job.id, job.attempt), None)
            self._slot_free.set()
        if outcome is not None:
            self._pending.append(outcome)
            self._outcome_ready.set()

    async def _execute(self, job: ClaimedJob, context: JobContext, started: float) -> Outcome:
        engine = self.engine
        try:
            target = engine.registry.by_name(job.target)
            args, kwargs = loads_args(job.args, job.kwargs)
        except (UnknownTargetError, ValueError) as exc:
            return self._failure(job, None, exc, started)
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
                        self._job_threads, lambda: call(fn, *args, **kwargs)
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
            return self._failure(job, target, error, started)
        return self._success(job, result, started)

    def _success(self, job: ClaimedJob, result: Any, started: float) -> Outcome:
        duration = (time.perf_counter() - started) * 1000
        data: dict[str, Any] = {"duration_ms": round(duration, 3)}
        stored: str | None = None
        if result is not None:
            try:
                stored = dumps_value(result, "result")
            except JobArgumentError as exc:
                data["result_not_stored"] = str(exc)
        return Outcome(
            job_id=job.id,
            attempt=job.attempt,
            history=(HistoryEntry(State.SUCCEEDED, "Completed", data),),
            retry_count=job.retry_count,
            expire_at=self._now() + self.engine.succeeded_ttl,
            result=stored,
        )

    def _failure(
        self, job: ClaimedJob, target: Target | None, exc: BaseException, started: float
    ) -> Outcome:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        message = str(exc)
        short = f"{type(exc).__name__}: {message}"[:500]
        details = {
            "exception_type": kind,
            "exception_message": message,
            "stack_trace": "".join(traceback.format_exception(exc)),
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        failed = HistoryEntry(State.FAILED, short, details)
        policy = NO_RETRY if target is None else (target.retry or self.engine.retry)
        if policy.should_retry(exc, job.retry_count):
            retry = job.retry_count + 1
            delay = policy.delay(retry)
            scheduled = HistoryEntry(
                State.SCHEDULED,
                f"Retry attempt {retry} of {policy.attempts} in {delay:g}s: {short}"[:500],
                {"retry": retry, "attempts": policy.attempts, "delay_s": delay},
            )
            self._housekeeping_soon()
            return Outcome(
                job_id=job.id,
                attempt=job.attempt,
                history=(failed, scheduled),
                retry_count=retry,
                scheduled_at=self._now() + delay,
                error=short,
            )
        return Outcome(
            job_id=job.id,
            attempt=job.attempt,
            history=(failed,),
            retry_count=job.retry_count,
            error=short,
        )

    # -- writing outcomes ---------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            await self._flush()

    async def _flush(self) -> None:
        delay = 0.1
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self._writing = len(batch)
            try:
                await self._io(self.engine.storage.finish, self.id, batch, self._now())
            except Exception:
                log.exception("writing %d job outcomes failed; retrying", len(batch))
                self._pending[:0] = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            finally:
                self._writing = 0
                self._slot_free.set()
            for outcome in batch:
                for f in self.engine.filters:
                    try:
                        f.on_state_change(outcome.job_id, outcome.state, outcome.reason)
                    except Exception:
                        log.exception("job filter %r failed on a state change", f)
            if any(o.state is not State.SCHEDULED for o in batch):
                self._waker.poke()  # continuations may have been enqueued

    # -- housekeeping ------------------------------------------------------------------

    def _housekeeping_soon(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._housekeeping_now.set)

    async def housekeeping_once(self) -> float:
        """Enqueue due scheduled and recurring jobs, rescue orphans; seconds to the next due."""
        storage = self.engine.storage
        now = self._now()
        moved, next_due = await self._io(storage.enqueue_due, now)
        created, next_recurring = await self._io(self.engine.recurring.fire_due, now)
        rescued = await self._io(storage.rescue, now, self.server_timeout)
        if rescued:
            log.warning("requeued %d jobs of servers that stopped heart-beating", len(rescued))
        if moved or created or rescued:
            self._waker.poke()
        wait = self.scheduler_interval
        for due in (next_due, next_recurring):
            if due is not None:
                wait = min(wait, max(0.0, due - self._now()))
        return wait

    async def _housekeeping_loop(self) -> None:
        next_expire = 0.0
        while not self._stopping:
            try:
                wait = await self.housekeeping_once()
                if time.monotonic() >= next_expire:
                    expired = await self._io(self.engine.storage.expire, self._now())
                    if expired:
                        log.info("expired %d finished jobs", expired)
                    next_expire = time.monotonic() + self.expire_interval
            except Exception:
                log.exception("job housekeeping failed")
                wait = self.scheduler_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._housekeeping_now.wait(), max(wait, 0.001))
            self._housekeeping_now.clear()

    # -- heartbeats (own thread) -------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        storage = self.engine.storage
        while not self._heartbeat_stop.wait(self.heartbeat_interval):
            try:
                running = [(r.job.id, r.job.attempt) for r in list(self._running.values())]
                alive, lost = storage.heartbeat(self.id, self._now(), running)
                if not alive:
                    log.warning("server %s was declared dead; registering again", self.id)
                    self._register()
                if lost and self._loop is not None:
                    self._loop.call_soon_threadsafe(self._cancel_lost, lost)
            except Exception:
                log.exception("heartbeat of server %s failed", self.id)

    def _cancel_lost(self, runs: list[tuple[int, int]]) -> None:
        for job_id, attempt in runs:
            running = self._running.get((job_id, attempt))
            if running is None:
                continue
            log.info("job %d (run %d) was deleted or taken over; cancelling it", job_id, attempt)
            running.context.cancel("the job was deleted or is no longer owned by this server")
            running.task.cancel()

    # -- inline draining (tests) -------------------------------------------------------

    async def drain(self) -> int:
        """Run due jobs inline until none is left (no background tasks); how many ran."""
        self._loop = asyncio.get_running_loop()
        self._slot_free = asyncio.Event()
        self._outcome_ready = asyncio.Event()
        self._housekeeping_now = asyncio.Event()
        await self._io(self._register)
        ran = 0
        try:
            while True:
                await self.housekeeping_once()
                jobs = await self._io(
                    self.engine.storage.claim, self.id, self.queues, self.concurrency, self._now()
                )
                if not jobs:
                    return ran
                for job in jobs:
                    self._start_job(job)
                await asyncio.gather(*(r.task for r in list(self._running.values())))
                await self._flush()
                ran += len(jobs)
        finally:
            await self._io(self.engine.storage.remove_server, self.id)
            await self._waker.close()
            self._io_pool.shutdown(wait=False)
            self._job_threads.shutdown(wait=False)
