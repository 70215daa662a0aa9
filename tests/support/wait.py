"""Polling until a condition holds: blocking (threads, processes) and in a running loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T], timeout: float = 10.0, what: str = "condition", interval: float = 0.05
) -> T:
    """Call ``check`` until it returns something truthy, sleeping in between; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def eventually(
    check: Callable[[], T], timeout: float = 10.0, what: str = "condition", interval: float = 0.05
) -> T:
    """:func:`wait_until` for async tests: the event loop keeps running in between."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
