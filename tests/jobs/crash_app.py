"""The app the crash test's `diquis worker` processes load: jobs that log their runs."""

from __future__ import annotations

import asyncio
import os

from diquis.jobs import JobEngine, current_job

engine = JobEngine(os.environ.get("DIQUIS_TEST_STORAGE", "sqlite:///.diquis/crash.db"))
RUNS = os.environ.get("DIQUIS_TEST_RUNS", ".diquis/runs.log")


def log_run(event: str) -> None:
    # one short O_APPEND write per line: atomic across processes
    line = f"{event} {current_job().job_id} {os.getpid()}\n".encode()
    fd = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@engine.job
def quick() -> None:
    log_run("quick")


@engine.job
async def slow(seconds: float) -> None:
    log_run("slow-start")
    await asyncio.sleep(seconds)
    log_run("slow-end")


@engine.job(mutex="tenant:{tenant}")
async def exclusive(tenant: str, seconds: float) -> None:
    log_run("exclusive-start")
    await asyncio.sleep(seconds)
    log_run("exclusive-end")
