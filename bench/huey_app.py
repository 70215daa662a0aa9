"""The huey side of the job benchmark: ``huey_consumer huey_app.huey``.

``$BENCH_HUEY`` picks the storage: ``sqlite`` (SqliteHuey on the file ``$BENCH_URL``,
huey's defaults: WAL, SQLite's default synchronous=FULL) or ``redis`` (RedisHuey on
the URL ``$BENCH_URL``, a dedicated database number).
"""

from __future__ import annotations

import os

from _redis_job import incr_sync
from _stamp import write_stamp
from huey import RedisHuey, SqliteHuey

if os.environ["BENCH_HUEY"] == "sqlite":
    huey: SqliteHuey | RedisHuey = SqliteHuey("bench", filename=os.environ["BENCH_URL"])
else:
    huey = RedisHuey("bench", url=os.environ["BENCH_URL"])


@huey.task()
def noop(i: int) -> None:
    """Do nothing."""


@huey.task()
def incr(i: int) -> None:
    """The realistic job: one Redis round trip, sync (huey runs tasks in threads)."""
    incr_sync()


@huey.task()
def stamp(t0: float) -> None:
    """Record the pickup latency of a job enqueued at ``t0``."""
    write_stamp(t0)
