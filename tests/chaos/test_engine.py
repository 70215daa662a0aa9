"""Engine-level chaos: no-op jobs while a random ``diquis worker`` is killed -9 every 2 s.

All jobs must succeed and none may be lost; a job may run twice only if it was Processing
on a worker that was killed (including one that finished but whose outcome was not yet
written). The duplicates are counted and reported.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from diquis.jobs import JobEngine, State
from tests.jobs import crash_app
from tests.support import processes

from .conftest import SIZES, Report, budget
from .servers import PrivatePostgres

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2


class Workers:
    """``diquis worker --app tests.jobs.crash_app:engine`` processes, killed and replaced."""

    def __init__(self, url: str, runs: Path, logs: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DIQUIS_")},
            "DIQUIS_TEST_STORAGE": url, "DIQUIS_TEST_RUNS": str(runs),
        }  # fmt: skip
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.live: list[subprocess.Popen[bytes]] = []
        self.killed: list[int] = []

    def start(self) -> subprocess.Popen[bytes]:
        proc = processes.spawn(
            [sys.executable, "-m", "diquis.cli", "--log-level", "WARNING", "worker",
             "--app", "tests.jobs.crash_app:engine", "--concurrency", "20",
             "--heartbeat-interval", "0.3", "--server-timeout", "2"],
            log=self.logs / f"worker{len(self.procs)}.log", env=self.env, cwd=ROOT,
        )  # fmt: skip
        self.procs.append(proc)
        self.live.append(proc)
        return proc

    def kill_one(self, rng: random.Random, registered: set[int]) -> None:
        """kill -9 a random worker, one that has registered if any, and start another."""
        victim = rng.choice([p for p in self.live if p.pid in registered] or self.live)
        processes.kill9(victim, timeout=10)
        self.killed.append(victim.pid)
        self.live.remove(victim)
        self.start()

    def stop(self) -> None:
        processes.stop_all(self.procs, timeout=10, kill_timeout=5)


@pytest.fixture
def job_store(pg: PrivatePostgres) -> Iterator[tuple[str, JobEngine]]:
    url = pg.create_database(f"chaos_jobs_{os.getpid()}_{int(time.time() * 1000)}")
    engine = JobEngine(url)
    engine.job(crash_app.quick)
    engine.storage.migrate()
    try:
        yield url, engine
    finally:
        engine.close()


def _enqueue(url: str, engine: JobEngine, count: int) -> list[int]:
    """Enqueue ``count`` jobs in one transaction (they become visible all at once)."""
    with psycopg.connect(url) as conn, conn.transaction():
        return [engine.enqueue(crash_app.quick, connection=conn) for _ in range(count)]


@pytest.mark.timeout(budget(120, 420))
def test_no_op_jobs_survive_kill_9_every_2s(
    job_store: tuple[str, JobEngine], tmp_path: Path, report: Report
) -> None:
    url, engine = job_store
    runs = tmp_path / "runs.log"
    workers = Workers(url, runs, tmp_path)
    try:
        for _ in range(WORKERS):
            workers.start()
        deadline = time.monotonic() + 30
        while len(engine.monitoring.list_servers()) < WORKERS:
            assert time.monotonic() < deadline, "workers did not register"
            time.sleep(0.05)
        report.did(f"{WORKERS} x diquis worker --concurrency 20 (tests.jobs.crash_app)")
        # every 2 s: a burst of jobs, then a kill while the workers are busy with it
        rng = random.Random()
        cycles = max(1, round(SIZES.kill_seconds / 2))
        ids: list[int] = []
        for cycle in range(cycles):
            began = time.monotonic()
            chunk = SIZES.engine_jobs // cycles + (1 if cycle < SIZES.engine_jobs % cycles else 0)
            ids += _enqueue(url, engine, chunk)
            time.sleep(rng.uniform(0.02, 0.2))
            workers.kill_one(rng, {s.pid for s in engine.monitoring.list_servers()})
            time.sleep(max(0.0, began + 2 - time.monotonic()))
        report.did(
            f"{len(ids)} no-op jobs in {cycles} bursts, 2 s apart, each followed by a kill -9 "
            f"of a random worker ({len(workers.killed)} kills in {SIZES.kill_seconds:g}s)"
        )
        calm = time.monotonic()
        deadline = calm + budget(60, 180)
        while True:
            counts = engine.monitoring.state_counts()
            if counts.get(State.SUCCEEDED, 0) == len(ids):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"not all jobs succeeded: {counts}")
            time.sleep(0.2)
        report.saw(f"all Succeeded {time.monotonic() - calm:.1f}s after the last kill")
        assert sum(counts.values()) == len(ids) == SIZES.engine_jobs, counts
        report.checked("every job Succeeded, none lost", len(ids))

        with psycopg.connect(url) as conn:
            rescued = conn.execute(
                "SELECT count(DISTINCT job_id) FROM diquis_job_history"
                " WHERE state = %s AND reason LIKE %s",
                (State.ENQUEUED.value, "%heart-beating%"),
            ).fetchone()
        report.saw(f"{rescued[0] if rescued else 0} jobs rescued from killed workers")
        per_job = Counter(
            int(line.split()[1])
            for line in runs.read_text().splitlines()
            if line.startswith("quick ")
        )
        assert set(per_job) == set(ids), "a Succeeded job never ran"
        report.checked("every job ran at least once", len(ids))
        twice = {job_id: n for job_id, n in per_job.items() if n > 1}
        killed = set(workers.killed)
        for job_id, n in twice.items():
            history = engine.get(job_id).history  # only the few duplicates: one read each
            processing = [h for h in history if h.state is State.PROCESSING]
            assert len(processing) >= n, (job_id, n, history)
            earlier = {int(str(h.server_id).split(":")[1]) for h in processing[:-1]}
            assert earlier <= killed, (job_id, earlier, killed)
        report.checked("a job ran twice only after a kill of the worker running it", len(twice))
        report.saw(
            f"{sum(per_job.values())} runs of {len(ids)} jobs: {len(twice)} ran twice "
            f"(all Processing on a killed worker)"
        )
    except BaseException:
        for log in sorted(tmp_path.glob("worker*.log")):
            print(f"=== {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        workers.stop()
