"""The catalog's threads: blocking SQL off the event loop, one cheap hop per call.

``loop.run_in_executor`` over a ``ThreadPoolExecutor`` does the same, at the price of a
``concurrent.futures.Future`` (a Condition), an idle-Semaphore probe and a chained
asyncio future per call; an API request makes several hops, so that machinery was a
measurable share of its CPU. Here a call is a tuple on a queue and one
``call_soon_threadsafe`` back. As with an executor, cancelling the awaiting coroutine does
not stop the function in its thread: it runs to the end and its outcome is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class CatalogThreads:
    """Up to ``size`` threads, started when a call finds none free; daemons, so a process
    whose catalog was never closed still exits."""

    def __init__(self, size: int, name: str = "diquis-catalog") -> None:
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # queued or running calls
        self._closed = False

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` in a catalog thread; the future of its result on this loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the catalog is closed")
            self._pending += 1
            if self._pending > len(self._threads) and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._queue.put((loop, future, fn, args))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, future, fn, args = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn(*args)
            except StopIteration as exc:  # a Future refuses it as an exception
                error = RuntimeError(f"StopIteration from {fn!r}")
                error.__cause__ = exc
            except BaseException as exc:
                error = exc
            with self._lock:
                self._pending -= 1
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, result, error)
            del item, future, result, error  # keep nothing alive while waiting

    def shutdown(self) -> None:
        """Let every thread finish its current call and end; later calls raise."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
