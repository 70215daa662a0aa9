"""The client process of the job benchmark: creates the schema, enqueues, probes latency.

``python _client.py KIND MODE [ARGS]`` with KIND one of diquis, huey, procrastinate, saq
(the store comes from the environment, see the ``*_app`` modules) and MODE one of

* ``setup`` — create the tables;
* ``enqueue N START [TARGET]`` — enqueue jobs START..START+N-1 of TARGET (``noop``, the
  default, or ``incr``: one Redis round trip) one call at a time, each its own durable
  commit, and print ``{"n": N, "seconds": S}``;
* ``latency M INTERVAL_MS`` — once a worker has run a warm-up job, enqueue M stamp jobs
  spaced INTERVAL_MS apart and wait until all have started (the workers write the stamps);
  with ``$BENCH_GAPS`` (seconds, comma-separated: ``idle.py``) job k is enqueued after
  gap k of quiet instead.

Timing covers only the enqueue loop: imports and connecting are done before it starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

Enqueue = Callable[[int], None]
Stamp = Callable[[float], None]
AEnqueue = Callable[[int], Awaitable[None]]
AStamp = Callable[[float], Awaitable[None]]


def count_stamps(warm: bool) -> int:
    """How many stamp lines the workers wrote (warm-up ones, or measured ones)."""
    total = 0
    for path in Path(os.environ["BENCH_STAMPS"]).glob("*.txt"):
        for line in path.read_text().splitlines():
            if line and (float(line.split()[0]) < 0) == warm:
                total += 1
    return total


def wait_stamps(want: int, warm: bool, timeout: float) -> bool:
    """Wait (bounded) until ``want`` stamps exist."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_stamps(warm) >= want:
            return True
        time.sleep(0.01)
    return False


# -- the enqueue loop and the latency probe, sync and async flavours ---------------------


def run_enqueue(enqueue: Enqueue, n: int, start: int) -> float:
    began = time.perf_counter()
    for i in range(start, start + n):
        enqueue(i)
    return time.perf_counter() - began


def schedule(m: int, interval: float) -> list[float]:
    """When (seconds after the start) each probe job is enqueued."""
    gaps = os.environ.get("BENCH_GAPS")
    if not gaps:
        return [k * interval for k in range(m)]
    offsets, at = [], 0.0
    for gap in gaps.split(","):
        at += float(gap)
        offsets.append(at)
    return offsets


def run_latency(stamp: Stamp, m: int, interval: float) -> bool:
    for warm in range(1, 4):  # a worker is up and idle once it has run a warm-up job
        stamp(-1.0)
        if not wait_stamps(warm, warm=True, timeout=60.0):
            return False
    time.sleep(0.3)
    began, offsets = time.monotonic(), schedule(m, interval)
    for offset in offsets:
        pause = began + offset - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        stamp(time.time())
    return wait_stamps(len(offsets), warm=False, timeout=30.0)


async def arun_enqueue(enqueue: AEnqueue, n: int, start: int) -> float:
    began = time.perf_counter()
    for i in range(start, start + n):
        await enqueue(i)
    return time.perf_counter() - began


async def arun_latency(stamp: AStamp, m: int, interval: float) -> bool:
    for warm in range(1, 4):
        await stamp(-1.0)
        if not await asyncio.to_thread(wait_stamps, warm, True, 60.0):
            return False
    await asyncio.sleep(0.3)
    began, offsets = time.monotonic(), schedule(m, interval)
    for offset in offsets:
        pause = began + offset - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        await stamp(time.time())
    return await asyncio.to_thread(wait_stamps, len(offsets), False, 30.0)


# -- per library -------------------------------------------------------------------------


def diquis(mode: str, args: list[str]) -> dict[str, object]:
    from diquis_app import engine, incr, noop, stamp

    engine.storage  # noqa: B018 - open the storage and bring its schema up to date
    if mode == "setup":
        return {}
    if mode == "enqueue":
        n, start = int(args[0]), int(args[1])
        job = incr if args[2:] == ["incr"] else noop
        return {"n": n, "seconds": run_enqueue(lambda i: engine.enqueue(job, i), n, start)}
    if mode == "batch":  # one call creating n jobs in one transaction (best of 3)
        n, best = int(args[0]), float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            with engine.batch() as b:
                for i in range(n):
                    b.enqueue(noop, i)
            best = min(best, time.perf_counter() - t0)
            engine.cancel_batch(b.id)
        return {"n": n, "seconds": best}
    ok = run_latency(lambda t0: engine.enqueue(stamp, t0), int(args[0]), float(args[1]) / 1000)
    return {"ok": ok}


def huey(mode: str, args: list[str]) -> dict[str, object]:
    import huey_app

    huey_app.huey.pending_count()  # connect (and create the tables) before timing
    if mode == "setup":
        return {}
    if mode == "enqueue":
        n, start = int(args[0]), int(args[1])
        task = huey_app.incr if args[2:] == ["incr"] else huey_app.noop
        return {"n": n, "seconds": run_enqueue(task, n, start)}
    ok = run_latency(huey_app.stamp, int(args[0]), float(args[1]) / 1000)
    return {"ok": ok}


async def procrastinate(mode: str, args: list[str]) -> dict[str, object]:
    from procrastinate_app import app, incr, noop, stamp

    async with app.open_async():
        if mode == "setup":
            await app.schema_manager.apply_schema_async()
            return {}

        task = incr if args[2:] == ["incr"] else noop

        async def enqueue(i: int) -> None:
            await task.defer_async(i=i)

        async def probe(t0: float) -> None:
            await stamp.defer_async(t0=t0)

        if mode == "enqueue":
            n, start = int(args[0]), int(args[1])
            return {"n": n, "seconds": await arun_enqueue(enqueue, n, start)}
        return {"ok": await arun_latency(probe, int(args[0]), float(args[1]) / 1000)}


async def saq(mode: str, args: list[str]) -> dict[str, object]:
    from saq_app import queue

    await queue.connect()  # opens the pool and creates the tables
    try:
        if mode == "setup":
            return {}

        function = "incr" if args[2:] == ["incr"] else "noop"

        async def enqueue(i: int) -> None:
            await queue.enqueue(function, i=i)

        async def probe(t0: float) -> None:
            await queue.enqueue("stamp", t0=t0)

        if mode == "enqueue":
            n, start = int(args[0]), int(args[1])
            return {"n": n, "seconds": await arun_enqueue(enqueue, n, start)}
        return {"ok": await arun_latency(probe, int(args[0]), float(args[1]) / 1000)}
    finally:
        await queue.disconnect()


def main(argv: list[str]) -> int:
    kind, mode, args = argv[0], argv[1], argv[2:]
    if mode not in ("setup", "enqueue", "latency", "batch"):
        raise SystemExit(f"unknown mode {mode!r}")
    if kind == "diquis":
        result = diquis(mode, args)
    elif kind == "huey":
        result = huey(mode, args)
    elif kind == "procrastinate":
        result = asyncio.run(procrastinate(mode, args))
    elif kind == "saq":
        result = asyncio.run(saq(mode, args))
    else:
        raise SystemExit(f"unknown library {kind!r}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
