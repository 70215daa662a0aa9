"""Private PostgreSQL and Redis servers the chaos tests start, stop and restart themselves.

Never the shared servers: faults are injected into a cluster made by ``initdb`` in a temp
dir (owned by the ``postgres`` user when we run as root) and a ``redis-server`` child, each
on a free port. Restarts reuse the port, so every client's URL stays valid.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support import processes
from tests.support.net import free_port, port_open
from tests.support.wait import wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _wait_port(port: int, up: bool, timeout: float, what: str) -> None:
    wait_until(
        lambda: port_open(port, timeout=0.3) is up,
        timeout,
        f"{what} to go {'up' if up else 'down'}",
    )


def postgres_missing() -> str | None:
    """Why a private PostgreSQL cannot be started here (None: it can)."""
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            return f"{PG_BIN / tool} is missing (apt-get install postgresql-15)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def redis_missing() -> str | None:
    """Why a private Redis cannot be started here (None: it can)."""
    return None if shutil.which("redis-server") else "redis-server is missing"


class PrivatePostgres:
    """A throw-away PostgreSQL 15 cluster: ``initdb`` once, ``pg_ctl`` start/stop/restart."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="diquis-chaos-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.sockets.mkdir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        # fsync only guards against an OS crash; a killed postgres keeps what it committed
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\nfsync = off\nfull_page_writes = off\nmax_connections = 400\n"
                "shared_buffers = 64MB\nlisten_addresses = '127.0.0.1'\n"
                f"port = {self.port}\nunix_socket_directories = '{self.sockets}'\n"
            )
        self.running = False

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        cmd = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server (same port as before) and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        self.running = True
        _wait_port(self.port, True, 30, "private PostgreSQL")

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m <mode>``: immediate is a crash (every backend killed at once)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False
        _wait_port(self.port, False, 30, "private PostgreSQL")

    def ensure_running(self) -> None:
        if not self.running or not port_open(self.port, timeout=0.3):
            with contextlib.suppress(RuntimeError):
                self.stop()
            self.start()

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server if it runs and delete the cluster."""
        if self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A ``redis-server`` child without persistence on a free port; kill it, start it again."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="diquis-chaos-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = processes.spawn(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            log=self.root / "redis.log", append=True,
        )  # fmt: skip
        _wait_port(self.port, True, 15, "private Redis")

    def stop(self) -> None:
        """kill -9 the server (its pub/sub subscribers see their connections drop)."""
        processes.kill(self.process, timeout=10)
        self.process = None
        _wait_port(self.port, False, 15, "private Redis")

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
