"""What every server duty is: something the server starts and stops, in order.

:class:`Duty` is the one life-cycle protocol. :class:`Periodic` is the shape most duties
have — a loop that does one round (:meth:`Periodic.tick`), then sleeps until the round
says, or until someone calls :meth:`Periodic.wake`. :class:`Io` is the small thread pool
the duties make their blocking storage calls in.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ..threads import Threads

log = logging.getLogger(__name__)
T = TypeVar("T")


class Duty(Protocol):
    """One background duty of a job server."""

    async def start(self) -> None:
        """Begin (called from the server's event loop)."""

    async def stop(self) -> None:
        """End; when this returns the duty runs nothing any more."""


class Io:
    """Blocking storage calls, run in a few threads off the event loop.

    A duty stopped while its call runs (its task cancelled) cannot stop the thread:
    :meth:`close` waits for such calls, so nobody closes the storage's connections under a
    statement still running on them.
    """

    def __init__(self, workers: int = 4) -> None:
        self._threads = Threads(workers, "diquis-io")

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._threads.call(fn, *args)

    async def close(self) -> None:
        """Wait for the calls still running, then let the threads go."""
        await self._threads.idle()
        self._threads.shutdown()


class Periodic(abc.ABC):
    """A duty that runs :meth:`tick` over and over; ``tick`` says how long to sleep."""

    name = "duty"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._due_now = False  # wake() came: the next sleep ends at once
        self._sleeping: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def tick(self) -> float:
        """One round; the seconds until the next."""

    def wake(self) -> None:
        """Run the next round now (safe from any thread; a no-op before start)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._run_now)

    def _run_now(self) -> None:
        self._due_now = True
        if self._sleeping is not None and not self._sleeping.done():
            self._sleeping.set_result(None)

    async def _sleep(self, seconds: float) -> None:
        """Until ``seconds`` have passed or wake() was called (a future and a timer: an
        idle server sleeps several times a second, and wait_for on an Event costs twice
        as much)."""
        if not self._due_now:
            loop = asyncio.get_running_loop()
            self._sleeping = sleeping = loop.create_future()
            timer = loop.call_later(seconds, self._run_now_if_sleeping, sleeping)
            try:
                await sleeping
            finally:
                timer.cancel()
                self._sleeping = None
        self._due_now = False

    @staticmethod
    def _run_now_if_sleeping(sleeping: asyncio.Future[None]) -> None:
        if not sleeping.done():
            sleeping.set_result(None)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=f"diquis-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._loop = None

    async def _run(self) -> None:
        while True:
            try:
                wait = await self.tick()
            except Exception:
                log.exception("job server duty %s failed", self.name)
                wait = self.interval
            await self._sleep(max(wait, 0.001))
