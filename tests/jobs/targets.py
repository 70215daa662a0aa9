"""Job targets the contract suite registers on each engine."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from diquis.jobs import JobEngine, RetryPolicy, current_job

CALLS: list[tuple[str, Any]] = []
_lock = threading.Lock()


def record(name: str, value: Any) -> None:
    with _lock:
        CALLS.append((name, value))


async def add(a: int, b: int) -> int:
    record("add", (a, b))
    return a + b


def sync_echo(value: Any) -> Any:
    record("sync_echo", value)
    return value


async def boom(message: str) -> None:
    record("boom", message)
    raise RuntimeError(message)


class Fatal(Exception):
    """An error a policy refuses to retry."""


async def fatal() -> None:
    record("fatal", None)
    raise Fatal("no point retrying")


async def slow_async(seconds: float) -> str:
    record("slow_async:start", seconds)
    await asyncio.sleep(seconds)
    record("slow_async:end", seconds)
    return "done"


def polite_sync(seconds: float) -> str:
    ctx = current_job()
    record("polite_sync:start", ctx.job_id)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.raise_if_cancelled()
        time.sleep(0.01)
    return "finished"


def stubborn_sync(seconds: float) -> str:
    record("stubborn_sync:start", current_job().job_id)
    time.sleep(seconds)
    record("stubborn_sync:end", seconds)
    return "ignored"


class Greeter:
    """A job class built per run with injected dependencies."""

    def __init__(self, greeting: str, sink: list[str]) -> None:
        self.greeting = greeting
        self.sink = sink

    async def greet(self, name: str) -> str:
        text = f"{self.greeting}, {name}"
        self.sink.append(text)
        return text


GREETINGS: list[str] = []


def register_all(engine: JobEngine) -> None:
    engine.job(add)
    engine.job(sync_echo)
    engine.job(boom, retry=RetryPolicy(attempts=2, delays=[10, 20]))
    engine.job(fatal, retry=RetryPolicy(attempts=5, delays=[1], dont_retry_on=(Fatal,)))
    engine.job(slow_async)
    engine.job(polite_sync)
    engine.job(stubborn_sync)
    engine.register_class(Greeter, factory=lambda: Greeter("Hello", GREETINGS))
