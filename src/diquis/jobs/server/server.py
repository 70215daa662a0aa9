"""The :class:`Server`: one job server's duties, wired together and run in order."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .duty import Duty, Io
from .executor import Executor
from .heartbeat import Heartbeat
from .lifeline import Lifeline
from .producer import Producer
from .pruner import Pruner
from .reporter import ProgressReporter
from .stager import Stager
from .writer import OutcomeWriter

if TYPE_CHECKING:
    from ..engine import JobEngine
    from ..model import ClaimedJob

log = logging.getLogger(__name__)


class Server:
    """Runs jobs from ``queues`` (first = highest priority) with ``concurrency`` slots.

    Jobs are claimed ahead of the free slots into a local buffer of ``prefetch`` jobs
    (default: ``concurrency``; more, up to 250, while jobs end faster than a round trip
    to the store, see :mod:`.producer`); queues with mutexes, limits, partitions or a
    queue limit are never claimed ahead. ``prefetch=0`` claims only for free slots.
    """

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
        prefetch: int | None = None,
    ) -> None:
        if isinstance(queues, str):
            queues = [q for q in queues.split(",") if q]
        if not queues or not all(isinstance(q, str) and q.strip() for q in queues):
            raise ValueError(f"queues must be a non-empty list of names, got {queues!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if prefetch is not None and prefetch < 0:
            raise ValueError(f"prefetch must be at least 0, got {prefetch}")
        if server_timeout <= heartbeat_interval:
            raise ValueError("server_timeout must be longer than heartbeat_interval")
        self.engine = engine
        self.queues = [q.strip() for q in queues]
        self.concurrency = concurrency
        self.hostname = socket.gethostname()
        self.id = name or f"{self.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.shutdown_timeout = shutdown_timeout
        self._started = False
        self._stopping = False
        self._io = io = Io()
        self._waker = waker = engine.storage.waker(self.queues)
        self.stager = Stager(engine, io, scheduler_interval, waker.poke)
        # a dead server's jobs are rescued within server_timeout + one heartbeat interval:
        # looking every second instead costs an idle server a transaction a second more
        rescue_interval = max(scheduler_interval, heartbeat_interval)
        self.lifeline = Lifeline(engine, io, rescue_interval, server_timeout, waker.poke)
        self.pruner = Pruner(engine, io, expire_interval)
        self.executor = Executor(
            engine,
            self.id,
            concurrency,
            queues=self.queues,
            on_outcome=lambda outcome: self.writer.add(outcome),
            on_slot_free=lambda: self.producer.slot_freed(),
            on_retry_scheduled=self.stager.wake,
            on_run_end=lambda context: self.reporter.run_ended(context),
            on_run_start=lambda: self.reporter.run_started(),
        )
        self.reporter = ProgressReporter(engine, io, self.executor.contexts)
        self.writer = OutcomeWriter(
            engine,
            self.id,
            io,
            on_enqueued=waker.poke,
        )
        self.producer = Producer(
            engine, self.id, self.queues, concurrency, io, waker, self.executor, self.writer,
            poll_interval, prefetch,
        )  # fmt: skip
        self.heartbeat = Heartbeat(
            engine,
            self.id,
            heartbeat_interval,
            runs=self.executor.runs,
            register=self._register,
            on_lost=lambda runs: self.executor.cancel(
                runs, "the job was deleted or is no longer owned by this server"
            ),
        )
        # started in this order, stopped in reverse
        self.duties: list[Duty] = [
            self.heartbeat, self.writer, self.reporter, self.executor,
            self.stager, self.lifeline, self.pruner, self.producer,
        ]  # fmt: skip

    @property
    def running_jobs(self) -> list[int]:
        """Ids of the jobs this server is running now (not those waiting in its buffer)."""
        return [job_id for job_id, _ in self.executor.running()]

    def _register(self) -> None:
        self.engine.storage.register_server(
            self.id, self.hostname, os.getpid(), self.queues, self.concurrency, self.engine.now()
        )

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Register, then start every duty."""
        if self._started:
            return
        await self._io(self._register)
        self._started = True
        self.engine.add_waker(self._waker)
        for duty in self.duties:
            await duty.start()
        log.info(
            "job server %s started: queues=%s concurrency=%d",
            self.id,
            self.queues,
            self.concurrency,
        )

    async def stop(self, timeout: float | None = None) -> None:
        """Stop fetching, let running jobs finish within ``timeout``, hand the rest back."""
        if not self._started or self._stopping:
            return
        self._stopping = True
        self.executor.grace = self.shutdown_timeout if timeout is None else timeout
        for duty in reversed(self.duties):
            await duty.stop()
            if duty is self.producer:  # claimed jobs that never started: back at once
                await self._hand_back(self.executor.take_buffered(), "before the job started")
            if duty is self.executor:
                await self._hand_back(self.executor.leftovers, "before the job finished")
        await self._io(self.engine.storage.remove_server, self.id)
        self.engine.remove_waker(self._waker)
        await self._waker.close()
        await self._io.close()
        log.info("job server %s stopped", self.id)

    async def _hand_back(self, jobs: list[ClaimedJob], when: str) -> None:
        if not jobs:
            return
        handed = await self._io(
            self.engine.storage.release,
            self.id,
            [(job.id, job.attempt) for job in jobs],
            self.engine.now(),
            f"Server {self.id} shut down {when}; job requeued",
        )
        log.info("handed %d unfinished jobs back to their queues", handed)

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully (the ``diquis worker`` loop).

        On uvloop when it is installed (the app extra brings it, and uvicorn picks it for
        ``diquis serve`` the same way): a worker's jobs then run on the same loop as a
        web process's, and each run's tasks and callbacks cost less.
        """
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._run_until_signalled())

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

    # -- inline ---------------------------------------------------------------------------

    async def housekeeping_once(self) -> float:
        """Stage due scheduled and recurring jobs, rescue orphans; seconds to the next due."""
        wait = await self.stager.tick()
        await self.lifeline.tick()
        return wait

    async def drain(self) -> int:
        """Run due jobs inline until none is left (no background tasks); how many ran."""
        await self._io(self._register)
        ran = 0
        try:
            while True:
                await self.housekeeping_once()
                claimed = await self.producer.claim(self.concurrency)
                if not claimed:
                    return ran
                await self.executor.wait_all()
                await self.reporter.tick()
                await self.writer.flush()
                ran += claimed
        finally:
            await self._io(self.engine.storage.remove_server, self.id)
            await self._waker.close()
            await self._io.close()
            self.executor.close()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop if it is installed, else None (asyncio's default loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
