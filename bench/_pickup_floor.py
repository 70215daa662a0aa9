"""The machine's own pickup on PostgreSQL: the floor under Diquis's pickup p50 (issue 14, point 3).

The pickup probe of ``bench/jobs.py`` with everything a job engine adds taken away, from
the same driver (psycopg) and with the same commits Diquis makes:

* a listener process (``python _pickup_floor.py listen URL FILE``) ``LISTEN``s, and on each
  notification claims the oldest waiting row with one ``UPDATE … RETURNING`` (until none is
  left) committed with ``synchronous_commit = off`` (as Diquis's claim-only rounds), writing
  ``time.time()`` next to the time in the row — no event loop, no thread hop, no history;
* this process inserts a row holding ``time.time()`` and notifies in one autocommit
  statement (a durable commit, as an ``enqueue()``), ``--interval`` ms apart.

So the p50 here is what two processes on this machine need for a durable insert, a
notification and a claim after the same idle gap — the part of a pickup no code of ours
can remove. Alone: ``python bench/_pickup_floor.py [--jobs N] [--interval MS]``.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import PostgresStore
from _stats import percentile

_TABLE = "CREATE TABLE floor_jobs (id bigserial PRIMARY KEY, t0 float8, state text NOT NULL)"
_INDEX = "CREATE INDEX floor_fetch ON floor_jobs (id) WHERE state = 'Enqueued'"
_ENQUEUE = (
    "WITH i AS (INSERT INTO floor_jobs (t0, state) VALUES (%s, 'Enqueued') RETURNING id)"
    " SELECT pg_notify('floor_enqueued', 'default') FROM i"
)
_CLAIM = (
    "UPDATE floor_jobs SET state = 'Processing' WHERE id = (SELECT id FROM floor_jobs"
    " WHERE state = 'Enqueued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING t0"
)


def listen(url: str, out: Path) -> None:
    """The listener process: claim a row per notification, stamp it; stops on SIGTERM."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET synchronous_commit TO off")
    conn.execute("LISTEN floor_enqueued")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    print("listening", flush=True)
    while True:
        select.select([conn.pgconn.socket], [], [])
        conn.pgconn.consume_input()
        while conn.pgconn.notifies() is not None:
            pass
        # claim until nothing is left: a notification that arrives while a claim runs is
        # taken by psycopg during that statement, not left for the loop above
        while (row := conn.execute(_CLAIM).fetchone()) is not None:
            os.write(fd, f"{row[0]!r} {time.time()!r}\n".encode())


def measure(admin_url: str, jobs: int, interval_ms: float) -> list[float]:
    """Pickup times (ms) of ``jobs`` rows ``interval_ms`` apart, on a database made for it."""
    store = PostgresStore(admin_url, f"bench_floor_{os.getpid()}")
    store.create()
    try:
        with tempfile.TemporaryDirectory(prefix="diquis-floor-") as tmp:
            out = Path(tmp) / "stamps.txt"
            with psycopg.connect(store.url, autocommit=True) as conn:
                conn.execute(_TABLE)
                conn.execute(_INDEX)
                _probe(conn, store.url, out, jobs, interval_ms)
            stamps = [tuple(map(float, line.split())) for line in out.read_text().splitlines()]
    finally:
        store.destroy()
    lat = [(t1 - t0) * 1000 for t0, t1 in stamps if t0 >= 0]
    if len(lat) < jobs:
        raise TimeoutError(f"pickup floor: {len(lat)} of {jobs} rows claimed in 30 s")
    return lat


def _probe(
    conn: psycopg.Connection[Any], url: str, out: Path, jobs: int, interval_ms: float
) -> None:
    """Run the listener process while this connection enqueues the rows, paced."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "listen", url, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "listening\n"
        for _ in range(3):  # warm-up rows, not counted
            conn.execute(_ENQUEUE, (-1.0,))
        time.sleep(0.3)
        began = time.monotonic()
        for k in range(jobs):
            pause = began + k * interval_ms / 1000 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            conn.execute(_ENQUEUE, (time.time(),))
        deadline = time.monotonic() + 30
        while _count(out) < jobs + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(10)


def _count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def report(admin_url: str, jobs: int, interval_ms: float, diquis_p50: float | None) -> str:
    """Measure and format the floor next to Diquis's PostgreSQL pickup p50 from the same run."""
    lat = measure(admin_url, jobs, interval_ms)
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    line = (
        f"- raw psycopg, INSERT + NOTIFY → LISTEN → one UPDATE claim ({jobs} rows"
        f" {interval_ms:g} ms apart): p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )
    if diquis_p50 is not None:
        line += (
            f"\n- Diquis's pickup p50 {diquis_p50:.2f} ms = floor + "
            f"{diquis_p50 - p50:.2f} ms (target ≤ 2 ms; the floor leaves "
            f"{max(0.0, 2.0 - p50):.2f} ms for the engine)"
        )
    return line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["listen"]:
        listen(argv[1], Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--interval", type=float, default=20.0, help="ms between rows")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args(argv)
    print(report(args.pg_url, args.jobs, args.interval, None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
