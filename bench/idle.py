"""Idle cost and pickup after idle: what a quiet Diquis costs, and how fast it wakes.

* idle CPU — start ``diquis serve`` (the reference app with its in-process worker, as
  ``make demo`` runs it) or ``diquis worker`` on a fresh store, let it settle
  (``--warmup`` s), then read its CPU time (every thread's, in ns, from
  ``/proc/PID/task/*/schedstat``; ``/proc/PID/stat`` counts whole 10 ms ticks, 0.05%
  steps over 20 s) over ``--seconds`` s: the percentage of one core it used doing
  nothing;
* pickup after idle — with one idle worker process, a client process enqueues a job
  every ``--gap`` s (and one after ``--long-gap`` s); each job writes ``time.time()``
  when it starts next to the time taken just before its enqueue call (the same stamps
  as ``jobs.py``'s pickup probe): max and p50 of the difference. For Diquis the rows'
  ``started_at - enqueued_at`` is shown too: the part before the claim (the enqueue's
  commit, the wake-up, the hop to the claim), the rest being the claim's own commit;
* a bare one-row insert + commit after the same gaps, from this process (``_enqueue.py``'s
  baseline): what the machine itself takes to commit after idle — the enqueue inside a
  pickup can be no faster.

Run it alone (``<bench venv>/bin/python bench/idle.py``) or call :func:`run` from another
script: it returns the rows that :func:`report` prints.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _enqueue import _bare_postgres, _bare_sqlite
from _peers import BENCH_DIR, Backend, PostgresStore, make_backends
from _procs import cpu_seconds_precise, free_port

IDLE_CPU_TARGET = 0.5  # % of one core
AFTER_IDLE_MAX_TARGET = 10.0  # ms
PEERS = ("huey-redis", "saq", "procrastinate")


@dataclass
class IdleRow:
    """One measured process or backend."""

    what: str
    cpu_percent: float | None = None
    pickups_ms: list[float] = field(default_factory=list)
    #: Diquis: started_at - enqueued_at from the rows (enqueue commit, wake-up, claim start)
    rows_ms: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def pickup_max(self) -> float | None:
        return max(self.pickups_ms) if self.pickups_ms else None

    @property
    def pickup_p50(self) -> float | None:
        if not self.pickups_ms:
            return None
        ordered = sorted(self.pickups_ms)
        return ordered[(len(ordered) - 1) // 2]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child, in its own session
        proc.wait(timeout=10)


def measure_cpu(
    cmd: list[str], env: dict[str, str], cwd: Path, warmup: float, seconds: float
) -> float:
    """% of one core ``cmd`` used over ``seconds`` once ``warmup`` s have passed."""
    logfile = cwd / f"idle-{time.monotonic_ns()}.log"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {logfile.read_text()[-2000:]}")
        c0, t0 = cpu_seconds_precise(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds_precise(proc.pid), time.monotonic()
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {logfile.read_text()[-2000:]}")
    finally:
        stop(proc)
    return 100.0 * (c1 - c0) / (t1 - t0)


class Bench:
    """The measurements, each on a fresh store; starts and stops only its own processes."""

    def __init__(self, args: argparse.Namespace, run_dir: Path) -> None:
        self.args = args
        self.dir = run_dir
        self.backends = make_backends(run_dir, args.pg_url, args.redis_url, f"idle{os.getpid()}")

    def env(self, backend: Backend, stamps: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(backend.child_env(stamps))
        env.update(backend.worker_env(backend.concurrency))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
        return env

    def files(self, name: str) -> Path:
        path = self.dir / f"{name}-files"
        (path / "stamps").mkdir(parents=True, exist_ok=True)
        return path

    # -- idle CPU -------------------------------------------------------------------------

    def worker_cpu(self, name: str) -> IdleRow:
        backend = self.backends[name]
        row = IdleRow(f"idle CPU, `diquis worker`, {name.removeprefix('diquis-')}")
        files = self.files(f"cpu-{name}")
        backend.store.create()
        try:
            env = self.env(backend, files / "stamps")
            self.client(backend, env, files, "setup")
            cmd = backend.worker_cmd(10)  # the CLI's default concurrency
            row.cpu_percent = measure_cpu(cmd, env, files, self.args.warmup, self.args.seconds)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"
        finally:
            backend.store.destroy()
        return row

    def serve_cpu(self, storage: str) -> IdleRow:
        """``diquis serve`` with its in-process worker, as ``make demo`` runs it."""
        row = IdleRow(f"idle CPU, `diquis serve` + its worker, {storage}")
        files = self.files(f"serve-{storage}")
        env = dict(os.environ)
        env.update(DIQUIS_DEV="1", DIQUIS_DATA_DIR=str(files / "data"))
        store = None
        if storage == "postgres":
            store = PostgresStore(self.args.pg_url, f"bench_idle_serve_{os.getpid()}")
            store.create()
            env["DIQUIS_DATABASE_URL"] = store.url
        try:
            cmd = [sys.executable, "-m", "diquis.cli", "--log-level", "WARNING", "serve",
                   "--host", "127.0.0.1", "--port", str(free_port())]  # fmt: skip
            row.cpu_percent = measure_cpu(cmd, env, files, self.args.warmup, self.args.seconds)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"
        finally:
            if store is not None:
                store.destroy()
        return row

    # -- pickup after idle ----------------------------------------------------------------

    def client(self, backend: Backend, env: dict[str, str], cwd: Path, *argv: str) -> None:
        cmd = [sys.executable, str(BENCH_DIR / "_client.py"), backend.kind, *argv]
        gaps = sum(float(g) for g in env.get("BENCH_GAPS", "0").split(","))
        done = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120 + gaps
        )
        if done.returncode != 0 or '"ok": false' in done.stdout:
            raise RuntimeError(f"client {argv} failed: {done.stderr[-2000:]}")

    def pickup(self, name: str) -> IdleRow:
        """One idle worker; jobs ``--gap`` s apart, then one after ``--long-gap`` s."""
        backend = self.backends[name]
        row = IdleRow(f"pickup after idle, {name}")
        files = self.files(f"pickup-{name}")
        stamps = files / "stamps"
        backend.store.create()
        worker: subprocess.Popen[bytes] | None = None
        try:
            env = self.env(backend, stamps)
            self.client(backend, env, files, "setup")
            with (files / "worker.log").open("wb") as out:
                worker = subprocess.Popen(
                    backend.worker_cmd(backend.concurrency), env=env, cwd=files,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            # the client waits for warm-up jobs first, so the worker is up and idle
            gaps = self.gaps()
            env["BENCH_GAPS"] = ",".join(map(str, gaps))
            self.client(backend, env, files, "latency", str(len(gaps)), "0")
            if backend.kind == "diquis":
                row.rows_ms = backend.row_latencies()
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"
        finally:
            if worker is not None:
                stop(worker)
            backend.store.destroy()
        for path in stamps.glob("*.txt"):
            for line in path.read_text().splitlines():
                t0, t1 = map(float, line.split())
                if t0 >= 0:
                    row.pickups_ms.append((t1 - t0) * 1000)
        return row

    def gaps(self) -> list[float]:
        """Seconds of quiet before each probe: ``--jobs`` × ``--gap``, then ``--long-gap``."""
        return [self.args.gap] * self.args.jobs + [self.args.long_gap] * (self.args.long_gap > 0)

    def bare_after_idle(self, storage: str) -> IdleRow:
        """A bare insert + commit after each gap: the machine's own commit after idle."""
        row = IdleRow(f"bare insert + commit after idle, {storage}")
        store = PostgresStore(self.args.pg_url, f"idlebare{os.getpid()}")
        try:
            if storage == "sqlite":
                insert, close = _bare_sqlite(self.dir / "bare.db")
            else:
                store.create()
                insert, close = _bare_postgres(store.url)
            try:
                insert(0)  # connected and warm, as the worker is
                for i, gap in enumerate(self.gaps(), 1):
                    time.sleep(gap)
                    t0 = time.perf_counter()
                    insert(i)
                    row.pickups_ms.append((time.perf_counter() - t0) * 1000)
            finally:
                close()
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"
        finally:
            if storage == "postgres":
                store.destroy()
        return row


def run(args: argparse.Namespace) -> list[IdleRow]:
    """Every measurement ``args`` asks for, as rows."""
    rows: list[IdleRow] = []
    with tempfile.TemporaryDirectory(prefix="diquis-idle-") as tmp:
        bench = Bench(args, Path(tmp))
        storages = [s for s in ("sqlite", "postgres") if s in args.storages]
        for storage in storages if "cpu" in args.what else []:
            for row in (bench.serve_cpu(storage), bench.worker_cpu(f"diquis-{storage}")):
                log(f"{row.what}: {fmt(row.cpu_percent, '%')} {row.error or ''}")
                rows.append(row)
        names = [f"diquis-{s}" for s in storages] + (list(PEERS) if args.peers else [])
        names = names if "pickup" in args.what else []
        for name in names:
            row = bench.pickup(name)
            log(f"{row.what}: {[round(v, 2) for v in row.pickups_ms]} {row.error or ''}")
            rows.append(row)
        for storage in storages if "pickup" in args.what else []:
            row = bench.bare_after_idle(storage)
            log(f"{row.what}: {[round(v, 2) for v in row.pickups_ms]} {row.error or ''}")
            rows.append(row)
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def fmt(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.2f} {unit}"


def report(rows: list[IdleRow]) -> str:
    """The table and a met/missed line per target."""
    lines = ["| what | idle CPU, % of a core | pickup after idle, max ms | p50 ms | jobs"
             " | enqueue→claim (rows), max ms |",
             "|---|--:|--:|--:|--:|--:|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r.what} | {fmt(r.cpu_percent, '')} | {fmt(r.pickup_max, '')}"
            f" | {fmt(r.pickup_p50, '')} | {len(r.pickups_ms) or ''}"
            f" | {fmt(max(r.rows_ms) if r.rows_ms else None, '')} |"
            + (f" {r.error.splitlines()[0][:100]}" if r.error else "")
        )
    lines.append("")
    for r in rows:
        if not r.what.startswith(("idle CPU", "pickup after idle, diquis")):
            continue
        if r.cpu_percent is not None:
            ok = r.cpu_percent <= IDLE_CPU_TARGET
            value, target = f"{r.cpu_percent:.2f}%", f"≤ {IDLE_CPU_TARGET}%"
        elif r.pickup_max is not None:
            ok = r.pickup_max <= AFTER_IDLE_MAX_TARGET
            value, target = f"max {r.pickup_max:.2f} ms", f"≤ {AFTER_IDLE_MAX_TARGET} ms"
        else:
            ok, value, target = False, "not measured", "a figure"
        lines.append(f"- {r.what}: target {'met' if ok else 'MISSED'} ({value} vs {target})")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--storages", default="sqlite,postgres", help="of sqlite,postgres")
    p.add_argument("--warmup", type=float, default=8.0, help="s before measuring idle CPU")
    p.add_argument("--seconds", type=float, default=20.0, help="s of idle CPU measured")
    p.add_argument("--jobs", type=int, default=6, help="jobs in the pickup-after-idle probe")
    p.add_argument("--gap", type=float, default=2.5, help="s of idle before each probe job")
    p.add_argument("--long-gap", type=float, default=10.0, help="then one after this long")
    p.add_argument("--what", default="cpu,pickup", help="of cpu,pickup")
    p.add_argument("--peers", action="store_true", help=f"also probe {', '.join(PEERS)}")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    p.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    rows = run(args)
    print("\nIdle Diquis: CPU of a quiet process, and pickup after idle\n")
    print(report(rows))
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
