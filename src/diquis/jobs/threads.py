"""Threads for blocking calls off the event loop, one cheap hop per call.

``loop.run_in_executor`` over a ``ThreadPoolExecutor`` does the same, at the price of a
``concurrent.futures.Future`` (a Condition), an idle-Semaphore probe and a chained
asyncio future per call: a round trip of ~68 µs against ~29 here, warm, and ~270 µs
against ~170 after 20 ms of quiet on a 2-core VM. A job server makes every storage call
through these (:class:`~diquis.jobs.server.duty.Io`); an application may use them for its
own blocking calls (the reference app's catalog does). Here a call is a tuple on a queue
and one ``call_soon_threadsafe`` back. As with an executor, cancelling the awaiting
coroutine does not stop the function in its thread: it runs to the end and its outcome
is dropped (:meth:`Threads.idle` waits for it); and as with an executor, a process that
exits lets the calls under way finish first.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import weakref
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


class _Shared:
    """What the threads use: never the Threads itself, so it can be collected."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.pending = 0  # queued or running calls
        self.closed = False

    def stop(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            count = len(self.threads)
        for _ in range(count):
            self.queue.put(None)


_live: weakref.WeakSet[_Shared] = weakref.WeakSet()


def _stop_all() -> None:
    for shared in list(_live):
        shared.stop()


# as concurrent.futures does: before the interpreter joins its threads at exit, ask ours to
# end once the calls under way are done (else threads nobody shut down would block the exit)
threading._register_atexit(_stop_all)  # type: ignore[attr-defined]


def _work(shared: _Shared) -> None:
    while (item := shared.queue.get()) is not None:
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
        with shared.lock:
            shared.pending -= 1
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, future, result, error)
        del item, future, result, error  # keep nothing alive while waiting


class Threads:
    """Up to ``size`` threads, started when a call finds none free; they end at
    :meth:`shutdown`, when this object is collected, or at the process's exit."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._shared = shared = _Shared()
        _live.add(shared)
        weakref.finalize(self, shared.stop)

    @property
    def _threads(self) -> list[threading.Thread]:
        return self._shared.threads

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` in one of the threads; the future of its result on this loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        shared = self._shared
        with shared.lock:
            if shared.closed:
                raise RuntimeError(f"the {self.name} threads are closed")
            shared.pending += 1
            if shared.pending > len(shared.threads) and len(shared.threads) < self.size:
                thread = threading.Thread(
                    target=_work, args=(shared,), name=f"{self.name}-{len(shared.threads)}"
                )
                shared.threads.append(thread)
                thread.start()
        shared.queue.put((loop, future, fn, args))
        return future

    async def idle(self, poll: float = 0.01) -> None:
        """Until no call is queued or running, those whose caller was cancelled included."""
        while self._shared.pending:
            await asyncio.sleep(poll)

    def shutdown(self) -> None:
        """Let every thread finish its current call and end; later calls raise."""
        self._shared.stop()
