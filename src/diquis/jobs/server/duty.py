"""What every server duty is: something the server starts and stops, in order.

:class:`Duty` is the one life-cycle protocol. :class:`Periodic` is the shape most duties
have — a loop that does one round (:meth:`Periodic.tick`), then sleeps until the round
says, or until someone calls :meth:`Periodic.wake`. :class:`Io` is the small thread pool
the duties make their blocking storage calls in.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Duty(Protocol):
    """One background duty of a job server."""

    async def start(self) -> None:
        """Begin (called from the server's event loop)."""

    async def stop(self) -> None:
        """End; when this returns the duty runs nothing any more."""


class Io:
    """Blocking storage calls, run in a few threads off the event loop."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="diquis-io")

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class Periodic(abc.ABC):
    """A duty that runs :meth:`tick` over and over; ``tick`` says how long to sleep."""

    name = "duty"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._due_now = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def tick(self) -> float:
        """One round; the seconds until the next."""

    def wake(self) -> None:
        """Run the next round now (safe from any thread; a no-op before start)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._due_now.set)

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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due_now.wait(), max(wait, 0.001))
            self._due_now.clear()
