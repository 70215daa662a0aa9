"""Run a coroutine at once, in the caller's turn, and only make a task if it has to wait.

Python 3.12's eager tasks do this; 3.11 has none. A broadcast wakes one writer per
connection, and almost every write completes without waiting (the socket takes the
bytes): creating, scheduling and running a task for each costs more than the write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


def start_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coro` up to its first suspension; return a task that finishes it, or None if done.

    An exception the coroutine raises before suspending propagates to the caller.
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_finish(coro, waiting_on))


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a started coroutine as a task would: wait for what it waits on, resume it."""
    try:
        while True:
            if waiting_on is None:  # a bare yield, as in asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                # As Task.__step does: the future was yielded by an await, mark it taken.
                waiting_on._asyncio_future_blocking = False
                # The coroutine reads the outcome (a result, an error, a cancellation) from
                # the future itself when resumed; cancelling this task cancels the future.
                with contextlib.suppress(BaseException):
                    await waiting_on
            try:
                waiting_on = coro.send(None)
            except StopIteration:
                return
    finally:
        coro.close()
