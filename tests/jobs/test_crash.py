"""kill -9 a `diquis worker` mid-job: its job runs again elsewhere; nothing is lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from diquis.jobs import JobEngine, State
from tests.support import processes
from tests.support.wait import wait_until

from . import crash_app

ROOT = Path(__file__).resolve().parents[2]


Workers = tuple[JobEngine, list[subprocess.Popen[bytes]], Path]


@pytest.fixture
def workers(storage_url: str, tmp_path: Path) -> Iterator[Workers]:
    runs = tmp_path / "runs.log"
    env = {**os.environ, "DIQUIS_TEST_STORAGE": storage_url, "DIQUIS_TEST_RUNS": str(runs)}
    engine = JobEngine(storage_url)
    engine.job(crash_app.quick)
    engine.job(crash_app.slow)
    engine.job(mutex="tenant:{tenant}")(crash_app.exclusive)
    engine.storage.migrate()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "diquis.cli",
                "--log-level",
                "WARNING",
                "worker",
                "--app",
                "tests.jobs.crash_app:engine",
                "--concurrency",
                "1",
                "--heartbeat-interval",
                "0.3",
                "--server-timeout",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    try:
        yield engine, procs, runs
    finally:
        for p in procs:
            processes.kill(p, timeout=10)
        engine.close()


@pytest.mark.needs_database
def test_kill_9_mid_job_reruns_it_and_loses_nothing(
    workers: Workers,
) -> None:
    engine, procs, runs = workers
    wait_until(lambda: len(engine.monitoring.list_servers()) == 3, 30, "3 workers to register")
    victim = engine.enqueue(crash_app.slow, 3.0)
    wait_until(lambda: engine.get(victim).state is State.PROCESSING, 10, "the victim to start")
    server_id = engine.get(victim).server_id
    assert server_id is not None
    pid = int(server_id.split(":")[1])
    assert pid in {p.pid for p in procs}
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # a job longer than the server timeout, on a live server, must never run twice
    survivor = engine.enqueue(crash_app.slow, 3.0)
    quick = [engine.enqueue(crash_app.quick) for _ in range(60)]
    wait_until(lambda: engine.get(victim).state is State.SUCCEEDED, 30, "the victim to rerun")
    recovered_in = time.monotonic() - killed_at
    wait_until(
        lambda: all(engine.get(j).state is State.SUCCEEDED for j in [survivor, *quick]),
        30,
        "every job to succeed",
    )
    events = Counter(tuple(line.split()[:2]) for line in runs.read_text().splitlines())
    assert events[("slow-start", str(victim))] == 2
    assert events[("slow-end", str(victim))] == 1
    assert events[("slow-start", str(survivor))] == 1
    assert all(events[("quick", str(j))] == 1 for j in quick)
    history = engine.get(victim).history
    assert any("stopped heart-beating" in (h.reason or "") for h in history)
    assert recovered_in < 2 + 3 + 5  # timeout + the rerun + slack: seconds, not minutes
    # SIGTERM: the survivors stop cleanly and deregister
    alive = [p for p in procs if p.pid != pid]
    for p in alive:
        p.send_signal(signal.SIGTERM)
    for p in alive:
        assert p.wait(20) == 0, p.stderr.read().decode() if p.stderr else ""
    assert engine.monitoring.list_servers() == []


@pytest.mark.needs_database
def test_kill_9_frees_the_dead_holders_mutex(workers: Workers) -> None:
    engine, _procs, runs = workers
    wait_until(lambda: len(engine.monitoring.list_servers()) == 3, 30, "3 workers to register")
    holder = engine.enqueue(crash_app.exclusive, "acme", 3.0)
    wait_until(lambda: engine.get(holder).state is State.PROCESSING, 10, "the holder to start")
    waiting = engine.enqueue(crash_app.exclusive, "acme", 0.2)
    other = engine.enqueue(crash_app.exclusive, "globex", 0.2)
    wait_until(lambda: engine.get(other).state is State.SUCCEEDED, 10, "another tenant's job")
    time.sleep(0.5)  # two idle workers: the same tenant's job still waits, Enqueued
    assert engine.get(waiting).state is State.ENQUEUED
    server_id = engine.get(holder).server_id
    assert server_id is not None
    os.kill(int(server_id.split(":")[1]), signal.SIGKILL)
    # the dead server is declared dead, its run requeued: the mutex is free again
    wait_until(lambda: engine.get(waiting).state is State.SUCCEEDED, 20, "the mutex to free")
    holder_job = engine.get(holder)
    assert any("stopped heart-beating" in (h.reason or "") for h in holder_job.history)
    wait_until(lambda: engine.get(holder).state is State.SUCCEEDED, 20, "the holder to rerun")
    # never two runs of tenant acme at once: after the killed run, starts and ends alternate
    acme = [
        line.split()[0]
        for line in runs.read_text().splitlines()
        if int(line.split()[1]) in (holder, waiting)
    ]
    assert acme[0] == "exclusive-start"
    assert acme[1:] == ["exclusive-start", "exclusive-end"] * 2, acme
