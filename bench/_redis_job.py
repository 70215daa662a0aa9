"""The realistic job body: one Redis round trip (``INCR``), the same in every library.

Async libraries (Diquis, procrastinate, saq) await a ``redis.asyncio`` client made once
per worker process, on first use (so it binds to the worker's event loop); huey runs
sync tasks in threads, so it uses one sync ``redis.Redis`` client per process (its
connection pool is thread-safe). The URL is ``$BENCH_JOB_REDIS``; the key is
``bench:incr``, outside every library's own keys.

``python _redis_job.py URL N TASKS`` measures the ceiling: N round trips by TASKS
coroutines on one event loop and nothing else (no job library), printed as JSON; on
uvloop when it is installed, as ``diquis worker`` runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import redis
import redis.asyncio

KEY = "bench:incr"
_async: Any = None
_sync: redis.Redis | None = None


async def incr() -> None:
    """One async round trip to Redis."""
    global _async
    if _async is None:
        _async = redis.asyncio.Redis.from_url(os.environ["BENCH_JOB_REDIS"])
    await _async.incr(KEY)


def incr_sync() -> None:
    """One sync round trip to Redis (huey's thread workers)."""
    global _sync
    if _sync is None:
        _sync = redis.Redis.from_url(os.environ["BENCH_JOB_REDIS"])
    _sync.incr(KEY)


async def _ceiling(url: str, n: int, tasks: int) -> float:
    client = redis.asyncio.Redis.from_url(url)
    await client.incr(KEY)  # connect first

    async def loop(k: int) -> None:
        for _ in range(k):
            await client.incr(KEY)

    began = time.perf_counter()
    await asyncio.gather(*(loop(n // tasks) for _ in range(tasks)))
    took = time.perf_counter() - began
    await client.aclose()
    return (n // tasks * tasks) / took


if __name__ == "__main__":
    url, n, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    try:
        import uvloop
    except ImportError:
        rate = asyncio.run(_ceiling(url, n, tasks))
    else:
        rate = uvloop.run(_ceiling(url, n, tasks))
    print(json.dumps({"rate": rate}))
