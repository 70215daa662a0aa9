"""The Diquis side of the job benchmark: ``diquis worker --app diquis_app:engine``.

The storage URL comes from ``$BENCH_URL`` (a SQLite file or a PostgreSQL database).
"""

from __future__ import annotations

import os

from _redis_job import incr as redis_incr
from _stamp import write_stamp

from diquis.jobs import JobEngine

engine = JobEngine(os.environ["BENCH_URL"])


@engine.job(name="noop")
async def noop(i: int) -> None:
    """Do nothing: the drain and enqueue measurements."""


@engine.job(name="incr")
async def incr(i: int) -> None:
    """The realistic job: one async Redis round trip."""
    await redis_incr()


@engine.job(name="stamp")
async def stamp(t0: float) -> None:
    """Record the pickup latency of a job enqueued at ``t0``."""
    write_stamp(t0)
