"""The benchmark's backends: where each library keeps its jobs, how its workers start,
and how the orchestrator reads back when the jobs ran.

The orchestrator never imports the job libraries; it talks to the stores directly
(sqlite3, psycopg, redis) and runs the libraries in child processes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

BENCH_DIR = Path(__file__).resolve().parent


# -- stores: a fresh SQLite file, PostgreSQL database or Redis database per backend run ---


class Store:
    """A fresh, empty place for one backend's jobs; ``url`` is what the library is given."""

    url: str

    def create(self) -> None:
        raise NotImplementedError

    def destroy(self) -> None:
        raise NotImplementedError


class SqliteStore(Store):
    def __init__(self, directory: Path, options: str = "", scheme: bool = True) -> None:
        self.directory = directory
        self.path = directory / "jobs.db"
        self.url = (f"sqlite:///{self.path}" if scheme else str(self.path)) + options

    def create(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)

    def destroy(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


class PostgresStore(Store):
    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url = admin_url
        self.database = database
        base = admin_url.rsplit("/", 1)[0]
        self.url = f"{base}/{database}"
        self._conn: psycopg.Connection[Any] | None = None

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    def create(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.database}"')

    def destroy(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        return self._conn.execute(sql.replace("?", "%s"), params).fetchall()


class RedisStore(Store):
    """A dedicated Redis database number, emptied with FLUSHDB (never FLUSHALL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=10)

    def create(self) -> None:
        self.client.flushdb()

    def destroy(self) -> None:
        self.client.flushdb()
        self.client.close()


# -- backends ---------------------------------------------------------------------------


@dataclass
class Backend:
    """One library on one store, as the benchmark drives it."""

    name: str
    kind: str  # diquis | huey | procrastinate | saq
    store: Store
    concurrency: int
    note: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name

    def child_env(self, stamps: Path) -> dict[str, str]:
        return {"BENCH_URL": self.store.url, "BENCH_STAMPS": str(stamps), **self.env}

    def worker_cmd(self, concurrency: int) -> list[str]:
        py = sys.executable
        if self.kind == "diquis":
            return [py, "-m", "diquis.cli", "--log-level", "WARNING", "worker",
                    "--app", "diquis_app:engine", "--concurrency", str(concurrency)]  # fmt: skip
        if self.kind == "huey":
            return [py, "-m", "huey.bin.huey_consumer", "huey_app.huey", "-q",
                    "-k", "thread", "-w", str(concurrency)]  # fmt: skip
        if self.kind == "procrastinate":
            return [py, "-m", "procrastinate", "--app=procrastinate_app.app", "worker",
                    "--concurrency", str(concurrency)]  # fmt: skip
        if self.kind == "saq":
            return [py, "-m", "saq", "saq_app.settings"]
        raise ValueError(self.kind)

    def worker_env(self, concurrency: int) -> dict[str, str]:
        return {"BENCH_CONCURRENCY": str(concurrency)}

    # -- reading results back -------------------------------------------------------

    @property
    def polled(self) -> bool:
        """huey keeps no start/finish times: its drain is timed by polling the queue length."""
        return self.kind == "huey"

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        store = self.store
        assert isinstance(store, SqliteStore | PostgresStore)
        return store.query(sql, params)

    def done(self, target: str = "noop") -> int:
        """How many ``target`` jobs have finished so far (all phases; saq: every job)."""
        if self.kind == "diquis":
            sql = "SELECT count(*) FROM diquis_jobs WHERE target = ? AND state = 'Succeeded'"
        elif self.kind == "procrastinate":
            sql = (
                "SELECT count(*) FROM procrastinate_jobs"
                " WHERE task_name = ? AND status = 'succeeded'"
            )
        elif self.kind == "saq":
            return int(self._q("SELECT count(*) FROM saq_jobs WHERE status = 'complete'")[0][0])
        else:
            raise ValueError(self.kind)
        return int(self._q(sql, (target,))[0][0])

    def window(self, since: float, target: str = "noop") -> tuple[int, float, float]:
        """(jobs, first start, last finish) of the ``target`` jobs started after ``since``."""
        if self.kind == "diquis":
            n, first, last = self._q(
                "SELECT count(*), min(started_at), max(finished_at) FROM diquis_jobs"
                " WHERE target = ? AND state = 'Succeeded' AND started_at >= ?",
                (target, since),
            )[0]
            return int(n), float(first), float(last)
        if self.kind == "procrastinate":
            first, n, last = self._q(
                "SELECT (SELECT extract(epoch FROM min(at)) FROM procrastinate_events"
                "   WHERE type = 'started' AND at >= to_timestamp(?)),"
                " count(*), extract(epoch FROM max(at)) FROM procrastinate_events"
                " WHERE type = 'succeeded' AND at >= to_timestamp(?)",
                (since, since),
            )[0]
            return int(n), float(first), float(last)
        if self.kind == "saq":
            starts: list[float] = []
            ends: list[float] = []
            for (blob,) in self._q("SELECT job FROM saq_jobs WHERE status = 'complete'"):
                job = json.loads(blob)
                if job.get("function") == target and job["started"] >= since * 1000:
                    starts.append(job["started"] / 1000)
                    ends.append(job["completed"] / 1000)
            return len(starts), min(starts), max(ends)
        raise ValueError(self.kind)

    def pending(self) -> int:
        """huey: jobs still waiting in the queue."""
        if isinstance(self.store, RedisStore):
            return int(self.store.client.llen("huey.redis.bench"))
        return int(self._q("SELECT count(*) FROM task WHERE queue = 'bench'")[0][0])

    def row_latencies(self) -> list[float]:
        """Diquis only: started_at - enqueued_at (ms) of the measured stamp jobs, from the rows."""
        rows = self._q(
            "SELECT args, started_at - enqueued_at FROM diquis_jobs WHERE target = 'stamp'"
            " AND started_at IS NOT NULL"
        )
        return [float(d) * 1000 for args, d in rows if json.loads(args)[0] >= 0]


def make_backends(run_dir: Path, pg_admin_url: str, redis_url: str, tag: str) -> dict[str, Backend]:
    """Every backend the benchmark knows, by CLI name, in table order."""

    def pg(name: str) -> PostgresStore:
        return PostgresStore(pg_admin_url, f"bench_{name.replace('-', '_')}_{tag}")

    return {
        b.name: b
        for b in [
            Backend("diquis-sqlite", "diquis", SqliteStore(run_dir / "diquis-sqlite"), 100,
                    "synchronous=FULL (SQLite's default)"),
            Backend("diquis-sqlite-normal", "diquis",
                    SqliteStore(run_dir / "diquis-sqlite-normal", "?synchronous=normal"), 100,
                    "extra row: synchronous=NORMAL, not the default"),
            Backend("diquis-sqlite-c10", "diquis", SqliteStore(run_dir / "diquis-sqlite-c10"), 10,
                    "the shipped default: `diquis worker` concurrency 10, synchronous=FULL"),
            Backend("diquis-postgres", "diquis", pg("diquis"), 100),
            Backend("diquis-postgres-c10", "diquis", pg("diquis_c10"), 10,
                    "the shipped default: `diquis worker` concurrency 10"),
            Backend("huey-sqlite", "huey", SqliteStore(run_dir / "huey-sqlite", scheme=False), 8,
                    "SqliteHuey, thread workers", env={"BENCH_HUEY": "sqlite"}),
            Backend("huey-redis", "huey", RedisStore(redis_url), 8,
                    "RedisHuey, thread workers; Redis default persistence (not fsynced)",
                    env={"BENCH_HUEY": "redis"}),
            Backend("procrastinate", "procrastinate", pg("procrastinate"), 10,
                    "PostgreSQL, psycopg connector"),
            Backend("saq", "saq", pg("saq"), 10, "saq PostgresQueue"),
        ]
    }  # fmt: skip
