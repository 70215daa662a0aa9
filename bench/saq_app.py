"""The saq side of the job benchmark, on saq's PostgreSQL queue: ``python -m saq saq_app.settings``.

Database from ``$BENCH_URL``; worker concurrency from ``$BENCH_CONCURRENCY``.
"""

from __future__ import annotations

import os
from typing import Any

from _redis_job import incr as redis_incr
from _stamp import write_stamp
from saq.queue.postgres import PostgresQueue

queue = PostgresQueue.from_url(os.environ["BENCH_URL"])


async def noop(ctx: dict[str, Any], *, i: int) -> None:
    """Do nothing."""


async def incr(ctx: dict[str, Any], *, i: int) -> None:
    """The realistic job: one async Redis round trip."""
    await redis_incr()


async def stamp(ctx: dict[str, Any], *, t0: float) -> None:
    """Record the pickup latency of a job enqueued at ``t0``."""
    write_stamp(t0)


settings = {
    "queue": queue,
    "functions": [noop, incr, stamp],
    "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "10")),
}
