"""Threads for blocking calls: outcomes, cancellation, limits, idle, shutdown, collection."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from diquis.jobs.server.duty import Io
from diquis.jobs.threads import Threads


class Blocked:
    """A call held in its thread until :meth:`release`, whose caller was cancelled."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.finished = threading.Event()

    def __call__(self) -> None:
        self.released.wait(10)
        self.finished.set()

    def release(self) -> None:
        self.released.set()


async def cancelled_mid_call(call: Callable[[Blocked], Awaitable[None]]) -> Blocked:
    """Start ``call(blocked)``, cancel its caller while it runs; the call goes on."""
    blocked = Blocked()
    task = asyncio.ensure_future(call(blocked))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not blocked.finished.is_set()
    return blocked


async def test_a_call_runs_in_one_of_the_threads_and_returns_its_result() -> None:
    threads = Threads(2, "t")
    try:
        name = await threads.call(lambda: threading.current_thread().name)
        assert name.startswith("t-")
        assert await threads.call(lambda a, b: a + b, 2, 3) == 5
    finally:
        threads.shutdown()


async def test_an_error_reaches_the_caller_as_raised() -> None:
    threads = Threads(1, "t")

    def boom() -> None:
        raise KeyError("gone")

    def stop() -> None:
        raise StopIteration

    try:
        with pytest.raises(KeyError, match="gone"):
            await threads.call(boom)
        with pytest.raises(RuntimeError, match="StopIteration"):
            await threads.call(stop)
        assert await threads.call(lambda: "still serving") == "still serving"
    finally:
        threads.shutdown()


async def test_a_cancelled_caller_leaves_the_call_to_finish_and_the_threads_usable() -> None:
    threads = Threads(1, "t")
    try:
        blocked = await cancelled_mid_call(threads.call)
        blocked.release()
        assert await threads.call(lambda: "next") == "next"
        assert blocked.finished.is_set()
    finally:
        threads.shutdown()


async def test_calls_run_at_once_up_to_the_size_and_never_on_more_threads() -> None:
    threads = Threads(3, "t")
    barrier = threading.Barrier(3, timeout=10)
    names: set[str] = set()

    def meet() -> None:
        names.add(threading.current_thread().name)
        barrier.wait()  # only returns once three calls run at the same time

    try:
        await asyncio.gather(*(threads.call(meet) for _ in range(3)))
        await asyncio.gather(*(threads.call(lambda: None) for _ in range(20)))
        assert len(names) == 3
        assert len(threads._threads) == 3
    finally:
        threads.shutdown()


async def test_after_shutdown_calls_are_refused_and_the_threads_end() -> None:
    threads = Threads(2, "t")
    await asyncio.gather(threads.call(lambda: None), threads.call(lambda: None))
    started = list(threads._threads)
    threads.shutdown()
    with pytest.raises(RuntimeError, match="closed"):
        threads.call(lambda: None)
    for thread in started:
        thread.join(5)
        assert not thread.is_alive()


async def test_threads_nobody_shut_down_end_when_collected() -> None:
    import gc

    threads = Threads(2, "t")
    await asyncio.gather(threads.call(lambda: None), threads.call(lambda: None))
    started = list(threads._threads)
    del threads
    gc.collect()
    for thread in started:
        thread.join(5)
        assert not thread.is_alive()


async def test_idle_waits_for_a_call_whose_caller_was_cancelled() -> None:
    threads = Threads(1, "t")
    try:
        blocked = await cancelled_mid_call(threads.call)
        waiting = asyncio.ensure_future(threads.idle())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the call still runs in its thread
        blocked.release()
        await asyncio.wait_for(waiting, 5)
        assert blocked.finished.is_set()
    finally:
        threads.shutdown()


async def test_a_servers_io_closes_after_the_calls_still_running() -> None:
    # a duty stopped mid-call cannot stop its thread: close() waits, so the storage's
    # connections are not closed under a statement still running on them
    io = Io(workers=2)
    blocked = await cancelled_mid_call(io)
    closing = asyncio.ensure_future(io.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    blocked.release()
    await asyncio.wait_for(closing, 5)
    assert blocked.finished.is_set()
    with pytest.raises(RuntimeError, match="closed"):
        await io(lambda: None)
