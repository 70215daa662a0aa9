"""Job-engine benchmark: Diquis on SQLite and PostgreSQL next to huey, procrastinate and saq.

Measured per backend, each on a fresh store (a temp SQLite file, a new PostgreSQL
database, or Redis database 15 emptied with FLUSHDB):

* enqueue — one client process enqueues ``--jobs`` no-op jobs one call at a time, each
  its own durable commit at the store's default durability (run twice; the mean is shown);
* drain — with ``--jobs`` jobs waiting, start 1 (then 2) worker processes and time from
  the first job's start to the last job's finish, read back from the store (huey keeps
  no times, so its queue length is polled every 5 ms instead);
* drain, Redis job — the same with 1 worker process and a realistic job whose whole body
  is one Redis round trip (``INCR``, see ``_redis_job.py``: async client in Diquis,
  procrastinate and saq; huey's thread workers use a sync client);
* pickup — with one idle worker process, a client process enqueues ``--latency-jobs``
  jobs ``--interval`` ms apart; each job writes ``time.time()`` when it starts next to
  the ``time.time()`` taken just before its enqueue call; p50/p99 of the difference;
* enqueue against a bare one-row insert + commit from the same driver (``_enqueue.py``);
* the pickup floor on PostgreSQL: the probe done with raw psycopg, one ``INSERT`` + ``NOTIFY``
  and a ``LISTEN`` process claiming with one ``UPDATE`` (``_pickup_floor.py``);
* idle CPU of ``diquis serve`` (with its worker) and ``diquis worker`` (``idle.py``; not
  with ``--quick`` or ``--no-idle``).

Each backend runs at the concurrency per worker process the table states (the peers at
their own defaults: huey 8 threads, procrastinate and saq 10); ``diquis-*-c10`` rows run
Diquis at its shipped default (``diquis worker`` concurrency 10), next to the c100 rows.

Run ``make bench`` (a virtualenv with the bench extra) or ``<venv>/bin/python bench/jobs.py``;
``--only diquis-sqlite,huey-sqlite`` picks backends, ``--jobs`` sizes the runs, ``--quick``
measures only enqueue and the two 1-process drains (no batch, no 2-process drain, a short
pickup probe) with 2,000 jobs unless ``--jobs`` says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import idle
from _enqueue import report as enqueue_report
from _peers import BENCH_DIR, Backend, PostgresStore, RedisStore, make_backends
from _pickup_floor import report as floor_report
from _stats import percentile

TARGETS = {"enqueue": 3000.0, "drain": 10000.0, "p50": 2.0}
COMPARE = {
    "diquis-sqlite": ["huey-sqlite", "huey-redis"],
    "diquis-sqlite-c10": ["huey-sqlite", "huey-redis"],
    "diquis-postgres": ["procrastinate", "saq"],
    "diquis-postgres-c10": ["procrastinate", "saq", "huey-redis"],
}
#: issue 14, point 1: at the default concurrency, (Diquis row, peer row, least ratio) for
#: the Redis-job drain, and the no-op drain floor (1 worker process)
DEFAULT_CONCURRENCY_ROWS = ["diquis-sqlite-c10", "diquis-postgres-c10"]
REDIS_JOB_VS = ("huey-redis", 2.0)
NOOP_DRAIN_FLOOR = 10_000.0


@dataclass
class Result:
    backend: str
    note: str
    concurrency: int
    enqueue: list[float] = field(default_factory=list)
    drain: dict[int, float] = field(default_factory=dict)
    #: 1 worker process, each job one Redis round trip
    drain_redis: float | None = None
    p50: float | None = None
    p99: float | None = None
    row_p50: float | None = None
    row_p99: float | None = None
    #: seconds to create a 10,000-job batch in one call (Diquis only)
    batch: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def enqueue_rate(self) -> float | None:
        return sum(self.enqueue) / len(self.enqueue) if self.enqueue else None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Runner:
    """Runs the three measurements on one backend; starts and stops only its own processes."""

    def __init__(self, backend: Backend, run_dir: Path, args: argparse.Namespace) -> None:
        self.b = backend
        self.args = args
        self.dir = run_dir / f"{backend.name}-files"
        self.stamps = self.dir / "stamps"
        self.stamps.mkdir(parents=True, exist_ok=True)
        self.concurrency = args.concurrency or backend.concurrency
        self.result = Result(backend.name, backend.note, self.concurrency)
        self._logs = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.b.child_env(self.stamps))
        env.update(self.b.worker_env(self.concurrency))
        env["BENCH_JOB_REDIS"] = self.args.redis_url
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
        return env

    def client(self, *argv: str, timeout: float) -> dict[str, Any]:
        cmd = [sys.executable, str(BENCH_DIR / "_client.py"), self.b.kind, *argv]
        done = subprocess.run(
            cmd, env=self.env(), cwd=self.dir, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"client {argv} failed:\n{done.stderr[-3000:]}")
        out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return out

    def start_workers(self, count: int) -> list[tuple[subprocess.Popen[bytes], Path]]:
        procs = []
        for _ in range(count):
            self._logs += 1
            logfile = self.dir / f"worker-{self._logs}.log"
            with logfile.open("wb") as out:
                proc = subprocess.Popen(
                    self.b.worker_cmd(self.concurrency), env=self.env(), cwd=self.dir,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            procs.append((proc, logfile))
        return procs

    def stop_workers(self, procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, logfile in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # our own child and its own session (huey's thread pool, saq's children)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                log(f"  worker {proc.pid} did not stop on SIGTERM; killed (log: {logfile})")

    def check_alive(self, procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
        for proc, logfile in procs:
            if proc.poll() is not None:
                tail = logfile.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker exited with {proc.returncode}:\n{tail}")

    # -- the measurements -------------------------------------------------------------

    def enqueue(self, start: int, target: str = "noop") -> None:
        n = self.args.jobs
        out = self.client("enqueue", str(n), str(start), target, timeout=120 + n / 50)
        rate = n / out["seconds"]
        if target == "noop":
            self.result.enqueue.append(rate)
        log(f"  enqueue {target}: {n} jobs in {out['seconds']:.2f}s = {rate:,.0f}/s")

    def drain(self, workers: int, target: str = "noop") -> None:
        n = self.args.jobs
        deadline = time.monotonic() + 60 + n / 100
        before = 0 if self.b.polled else self.b.done(target)
        since = time.time()
        procs = self.start_workers(workers)
        try:
            if self.b.polled:
                rate = self._drain_polled(procs, n, deadline)
            else:
                while self.b.done(target) < before + n:
                    self.check_alive(procs)
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"drain did not finish: {self.b.done(target)} done")
                    time.sleep(0.05)
                count, first, last = self.b.window(since, target)
                rate = count / (last - first)
                log(f"  drain {target} x{workers}: {count} jobs in {last - first:.3f}s"
                    f" = {rate:,.0f}/s")  # fmt: skip
        finally:
            self.stop_workers(procs)
        if target == "noop":
            self.result.drain[workers] = rate
        else:
            self.result.drain_redis = rate

    def _drain_polled(
        self, procs: list[tuple[subprocess.Popen[bytes], Path]], n: int, deadline: float
    ) -> float:
        start_pending = self.b.pending()
        first: tuple[float, int] | None = None
        while True:
            pending = self.b.pending()
            now = time.perf_counter()
            if first is None and pending < start_pending:
                first = (now, pending)
            if pending == 0:
                break
            self.check_alive(procs)
            if time.monotonic() > deadline:
                raise TimeoutError(f"drain did not finish: {pending} pending")
            time.sleep(0.005)
        assert first is not None
        took = now - first[0]
        rate = first[1] / took
        log(f"  drain x{len(procs)}: {first[1]} jobs in {took:.3f}s = {rate:,.0f}/s (polled)")
        time.sleep(0.2)  # let the last dequeued no-ops finish
        return rate

    def batch(self) -> None:
        if self.b.kind != "diquis":
            return
        out = self.client("batch", "10000", timeout=300)
        self.result.batch = float(out["seconds"])
        log(f"  10,000-job batch in one call: {self.result.batch:.3f}s")

    def latency(self) -> None:
        m, interval = self.args.latency_jobs, self.args.interval
        if m <= 0:
            return
        procs = self.start_workers(1)
        try:
            out = self.client("latency", str(m), str(interval), timeout=120 + m * interval / 1000)
            if not out["ok"]:
                self.check_alive(procs)
                raise TimeoutError("latency probe: not every job started within 30s")
        finally:
            self.stop_workers(procs)
        lat = []
        for path in self.stamps.glob("*.txt"):
            for line in path.read_text().splitlines():
                t0, t1 = map(float, line.split())
                if t0 >= 0:
                    lat.append((t1 - t0) * 1000)
        r = self.result
        r.p50, r.p99 = percentile(lat, 50), percentile(lat, 99)
        log(f"  pickup: {len(lat)} jobs, p50 {r.p50:.2f} ms, p99 {r.p99:.2f} ms")
        if self.b.kind == "diquis":
            rows = self.b.row_latencies()
            r.row_p50, r.row_p99 = percentile(rows, 50), percentile(rows, 99)
            log(f"  pickup (rows: started_at - enqueued_at): p50 {r.row_p50:.2f} ms,"
                f" p99 {r.row_p99:.2f} ms")  # fmt: skip

    def run(self) -> Result:
        store = self.b.store
        log(f"{self.b.name}: concurrency {self.concurrency} per worker process")
        store.create()
        try:
            n = self.args.jobs
            steps = [
                lambda: self.client("setup", timeout=120),
                *([] if self.args.quick else [self.batch]),
                lambda: self.enqueue(0),
                lambda: self.drain(1),
                *([] if self.args.quick else [lambda: self.enqueue(n), lambda: self.drain(2)]),
                lambda: self.enqueue(2 * n, "incr"),
                lambda: self.drain(1, "incr"),
                self.latency,
            ]
            for step in steps:
                try:
                    step()
                except Exception as exc:
                    self.result.errors.append(f"{type(exc).__name__}: {exc}")
                    log(f"  FAILED: {type(exc).__name__}: {str(exc)[-2000:]}")
                    break
        finally:
            store.destroy()
        return self.result


# -- report ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    info = {
        "date": dt.date.today().isoformat(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def table(results: list[Result]) -> str:
    lines = [
        "| backend | enqueue jobs/s | drain jobs/s, 1 worker proc | drain jobs/s, 2 worker procs"
        " | drain jobs/s, Redis job, 1 proc | pickup p50 ms | pickup p99 ms | concurrency/proc"
        " | notes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        note = (
            r.note
            + ("; " if r.note and r.errors else "")
            + "; ".join(e.splitlines()[0][:80] for e in r.errors)
        )
        lines.append(
            f"| {r.backend} | {fmt_rate(r.enqueue_rate)} | {fmt_rate(r.drain.get(1))}"
            f" | {fmt_rate(r.drain.get(2))} | {fmt_rate(r.drain_redis)}"
            f" | {fmt_ms(r.p50)} | {fmt_ms(r.p99)}"
            f" | {r.concurrency} | {note} |"
        )
    return "\n".join(lines)


def ratio(ours: float | None, theirs: float | None, lower_is_better: bool = False) -> str:
    if not ours or not theirs:
        return "—"
    return f"{(theirs / ours) if lower_is_better else (ours / theirs):.2f}×"


def ratios(results: list[Result]) -> str:
    by = {r.backend: r for r in results}
    lines = [
        "| Diquis vs peer | enqueue | drain, 1 proc | drain, 2 procs | drain, Redis job"
        " | pickup p50 |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for ours, peers in COMPARE.items():
        for peer in peers:
            if ours not in by or peer not in by:
                continue
            a, b = by[ours], by[peer]
            lines.append(
                f"| {ours} / {peer} | {ratio(a.enqueue_rate, b.enqueue_rate)}"
                f" | {ratio(a.drain.get(1), b.drain.get(1))}"
                f" | {ratio(a.drain.get(2), b.drain.get(2))}"
                f" | {ratio(a.drain_redis, b.drain_redis)}"
                f" | {ratio(a.p50, b.p50, lower_is_better=True)} |"
            )
    return "\n".join(lines)


def targets(results: list[Result]) -> str:
    lines = []
    for r in results:
        if r.backend not in COMPARE:
            continue
        drain = max(r.drain.values(), default=None)
        checks = [
            ("enqueue", r.enqueue_rate, TARGETS["enqueue"], r.enqueue_rate is not None
             and r.enqueue_rate >= TARGETS["enqueue"]),
            ("drain", drain, TARGETS["drain"], drain is not None and drain >= TARGETS["drain"]),
            ("pickup p50", r.p50, TARGETS["p50"], r.p50 is not None and r.p50 <= TARGETS["p50"]),
        ]  # fmt: skip
        parts = [
            f"{name} {'met' if ok else 'MISSED'}"
            f" ({fmt_ms(v) if name.startswith('pickup') else fmt_rate(v)}"
            f" vs {'≤' if name.startswith('pickup') else '≥'} {t:g})"
            for name, v, t, ok in checks
        ]
        lines.append(f"- {r.backend}: " + ", ".join(parts))
    return "\n".join(lines)


def redis_ceiling(redis_url: str, n: int, tasks: int = 10) -> float | None:
    """Jobs/s of the Redis job's body alone: n INCRs by 10 coroutines in one process."""
    cmd = [sys.executable, str(BENCH_DIR / "_redis_job.py"), redis_url, str(n), str(tasks)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        log(f"Redis ceiling failed: {done.stderr[-500:]}")
        return None
    rate = float(json.loads(done.stdout)["rate"])
    log(f"Redis job body alone (redis.asyncio on uvloop if installed, {tasks} coroutines,"
        f" no job library): {rate:,.0f}/s")  # fmt: skip
    return rate


def default_concurrency_targets(results: list[Result], ceiling: float | None) -> str:
    """Issue 14, point 1: drain at the default concurrency, one line per target."""
    by = {r.backend: r for r in results}
    peer_name, least = REDIS_JOB_VS
    peer = by.get(peer_name)
    lines = []
    for name in DEFAULT_CONCURRENCY_ROWS:
        r = by.get(name)
        if r is None:
            continue
        theirs = peer.drain_redis if peer is not None else None
        if r.drain_redis and theirs:
            x = r.drain_redis / theirs
            verdict = "met" if x >= least else "MISSED"
            lines.append(
                f"- {name}, Redis job: {fmt_rate(r.drain_redis)} jobs/s = {x:.2f}× {peer_name}"
                f" ({fmt_rate(theirs)}; target ≥ {least:g}×): target {verdict}"
            )
        else:
            lines.append(
                f"- {name}, Redis job: not measured (needs {name} and {peer_name}, e.g."
                f" --only {name},{peer_name})"
            )
        if r.drain_redis and ceiling:
            lines.append(
                f"  (the job body alone, one process, 10 coroutines, no job library:"
                f" {fmt_rate(ceiling)}/s; {name} reaches {r.drain_redis / ceiling:.0%} of it)"
            )
        noop = r.drain.get(1)
        verdict = "met" if noop is not None and noop >= NOOP_DRAIN_FLOOR else "MISSED"
        lines.append(
            f"- {name}, no-op jobs, 1 worker process: {fmt_rate(noop)} jobs/s"
            f" (target ≥ {NOOP_DRAIN_FLOOR:,.0f}): target {verdict}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=0, help="jobs per enqueue/drain run")
    parser.add_argument("--latency-jobs", type=int, default=-1, help="jobs in the pickup probe")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="enqueue and the 1-process drains only, 2,000 jobs, a 50-job pickup probe",
    )
    parser.add_argument("--interval", type=float, default=20.0, help="ms between probe jobs")
    parser.add_argument("--only", default="", help="comma-separated backends (default: all)")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="override every backend's concurrency/proc"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="an admin connection; a database per backend is created and dropped",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="a dedicated Redis database: it is emptied with FLUSHDB",
    )
    parser.add_argument(
        "--no-idle",
        action="store_true",
        help="skip the idle-CPU figure of diquis serve/worker (bench/idle.py; off with --quick)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (2_000 if args.quick else 10_000)
    if args.latency_jobs < 0:
        args.latency_jobs = 50 if args.quick else 200

    with tempfile.TemporaryDirectory(prefix="diquis-bench-") as tmp:
        run_dir = Path(tmp)
        backends = make_backends(run_dir, args.pg_url, args.redis_url, str(os.getpid()))
        names = [n.strip() for n in args.only.split(",") if n.strip()] or list(backends)
        unknown = [n for n in names if n not in backends]
        if unknown:
            parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(backends)}")
        redis_db = args.redis_url.rstrip("/").rsplit("/", 1)[-1]
        if any(isinstance(backends[n].store, RedisStore) for n in names) and not redis_db.isdigit():
            parser.error("--redis-url must name a database number (it gets FLUSHDB)")
        if any(isinstance(backends[n].store, PostgresStore) for n in names):
            log(f"PostgreSQL admin URL {args.pg_url}")
        info = machine()
        log(f"machine: {info}; jobs={args.jobs}, pickup probe {args.latency_jobs} jobs"
            f" every {args.interval:g} ms")  # fmt: skip
        started = time.monotonic()
        results = [Runner(backends[n], run_dir, args).run() for n in names]
        ceiling = (
            redis_ceiling(args.redis_url, args.jobs)
            if any(r.drain_redis for r in results)
            else None
        )
        log(f"done in {time.monotonic() - started:.0f}s")

    print(f"\nJob benchmark, {info['date']}: {info['cpus']} CPUs ({info.get('cpu', '?')}),"
          f" Python {info['python']}, SQLite {info['sqlite']}; {args.jobs:,} no-op jobs per"
          f" enqueue/drain run, pickup over {args.latency_jobs} jobs"
          f" {args.interval:g} ms apart.\n")  # fmt: skip
    print(table(results))
    print("\nDiquis ÷ peer (>1: Diquis is faster; pickup: peer p50 ÷ Diquis p50)\n")
    print(ratios(results))
    print("\nIssue targets (drain: the better of 1 and 2 worker processes)\n")
    print(targets(results))
    default_rows = default_concurrency_targets(results, ceiling)
    if default_rows:
        print("\nIssue 14, point 1: drain at the default concurrency (10), same run\n")
        print(default_rows)
    batches = [r for r in results if r.batch is not None]
    if batches:
        print("\nA 10,000-job batch created in one call (target ≤ 0.5 s, best of 3):")
        for r in batches:
            mark = "✓" if r.batch is not None and r.batch <= 0.5 else "✗"
            print(f"- {r.backend}: {r.batch:.3f} s {mark}")
    rows = [r for r in results if r.row_p50 is not None]
    if rows:
        print("\nDiquis pickup from its own rows (started_at - enqueued_at):")
        for r in rows:
            print(f"- {r.backend}: p50 {fmt_ms(r.row_p50)} ms, p99 {fmt_ms(r.row_p99)} ms")
    pg_rows = [r for r in results if r.backend.startswith("diquis-postgres")]
    if pg_rows and args.latency_jobs > 0:
        shipped = [r for r in pg_rows if r.backend == "diquis-postgres-c10"] or pg_rows
        print("\nPickup floor on PostgreSQL: the same probe with raw psycopg (_pickup_floor.py)\n")
        print(floor_report(args.pg_url, args.latency_jobs, args.interval, shipped[0].p50))
    pg = args.pg_url if "diquis-postgres" in names else None  # rows next to a bare insert
    print(enqueue_report(pg, min(args.jobs, 5000), {r.backend: r.enqueue_rate for r in results}))
    storages = [
        s for s in ("sqlite", "postgres") if any(n.startswith(f"diquis-{s}") for n in names)
    ]
    if storages and not (args.quick or args.no_idle):
        idle_args = idle.parser().parse_args(
            ["--what", "cpu", "--storages", ",".join(storages), "--pg-url", args.pg_url]
        )
        print("\nIdle CPU of diquis serve (with its worker) and diquis worker (bench/idle.py)\n")
        print(idle.report(idle.run(idle_args)))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "args": vars(args) | {"json": str(args.json)},
                    "results": [asdict(r) for r in results],
                    "redis_job_body_alone": ceiling,
                },
                indent=2,
            )
        )
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
