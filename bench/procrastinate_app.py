"""The procrastinate side of the job benchmark (PostgreSQL, psycopg connector).

``python -m procrastinate --app=procrastinate_app.app worker``; database from ``$BENCH_URL``.
"""

from __future__ import annotations

import os

import procrastinate
from _redis_job import incr as redis_incr
from _stamp import write_stamp

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ["BENCH_URL"]))


@app.task(name="noop")
async def noop(i: int) -> None:
    """Do nothing."""


@app.task(name="incr")
async def incr(i: int) -> None:
    """The realistic job: one async Redis round trip."""
    await redis_incr()


@app.task(name="stamp")
async def stamp(t0: float) -> None:
    """Record the pickup latency of a job enqueued at ``t0``."""
    write_stamp(t0)
