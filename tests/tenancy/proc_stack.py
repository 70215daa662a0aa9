"""Run the real ``diquis`` processes (serve / worker) for the process-level tests.

Every process is a ``python -m diquis.cli ...`` child started by ``tests.support.processes``,
with its output in a log file under the test's tmp dir; :meth:`Stack.stop` ends each one
by its handle (SIGTERM, then SIGKILL). Nothing here looks processes up by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import functools
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from pysignalr.client import SignalRClient
from sqlalchemy import Engine, create_engine, func, select, text

from diquis.jobs import Job, JobEngine
from diquis.tenancy.infrastructure.db import notifications, sqlalchemy_url, users
from tests.support import processes
from tests.support.net import free_port

SECRET = "process-tests-secret-key-with-enough-bytes"
ROOT_EMAIL = "root@platform.test"
ROOT_PASSWORD = "platform-admin-pw-42"


def unique(prefix: str) -> str:
    """A tenant name nobody else uses (tenant databases share one PostgreSQL namespace)."""
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def slug_of(name: str) -> str:
    return "-".join(name.lower().split())


# -- SMTP -----------------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives (from its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def set_password_token(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found = re.search(r"/set-password\?token=([A-Za-z0-9_-]+)", payload.decode())
            assert found, payload
            return found.group(1)
    raise AssertionError("the welcome e-mail has no text part")


# -- processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    """One child process and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return processes.read_log(self.log)

    def stop(self) -> None:
        processes.stop(self.popen, timeout=8, kill_timeout=5)

    def kill9(self) -> None:
        processes.kill9(self.popen, timeout=5)


def _worker_started(proc: Proc) -> bool:
    return "job server" in proc.output() and "started" in proc.output()


@dataclass
class Stack:
    """A data dir, a catalog database, a backplane and the processes sharing them."""

    tmp: Path
    database_url: str
    backplane_url: str
    smtp_port: int
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    _catalog: Engine | None = None
    _jobs: JobEngine | None = None

    def base_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIQUIS_")}
        env.update(
            DIQUIS_DATA_DIR=str(self.tmp / "data"),
            DIQUIS_DATABASE_URL=self.database_url,
            DIQUIS_BACKPLANE_URL=self.backplane_url,
            DIQUIS_SECRET_KEY=SECRET,
            DIQUIS_SMTP_URL=f"smtp://127.0.0.1:{self.smtp_port}",
            DIQUIS_PUBLIC_URL="http://diquis.test",
            DIQUIS_DEV="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        env.update(extra)
        return env

    def cli(self, *args: str, **extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "diquis.cli", *args],
            env=self.base_env(**extra), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def _start(self, name: str, args: list[str], port: int | None, **extra: str) -> Proc:
        log = self.tmp / f"{name}.log"
        popen = processes.spawn(
            [sys.executable, "-m", "diquis.cli", *args], log=log, env=self.base_env(**extra)
        )
        proc = Proc(name, popen, log, port)
        self.procs.append(proc)
        return proc

    def serve(self, name: str, **extra: str) -> Proc:
        """``diquis serve --no-worker`` on a free port (not waited for: see :meth:`ready`)."""
        port = free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--no-worker"]
        return self._start(name, args, port, **extra)

    def worker(self, name: str, **extra: str) -> Proc:
        """``diquis worker`` with fast heartbeats: a dead worker is noticed within ~2 s."""
        args = ["worker", "--concurrency", "2", "--heartbeat-interval", "0.3",
                "--server-timeout", "2", "--shutdown-timeout", "3"]  # fmt: skip
        return self._start(name, args, None, **extra)

    def ready(self, *procs: Proc, timeout: float = 30) -> None:
        """Wait until each web process answers /readyz and each worker has registered."""
        deadline = time.monotonic() + timeout
        for proc in procs:
            if proc.port is not None:
                ready = functools.partial(processes.answers_readyz, proc.base)
            else:
                ready = functools.partial(_worker_started, proc)
            processes.wait_ready(
                proc.popen, ready, what=proc.name, output=proc.output,
                deadline=deadline, interval=0.05, tail=3000,
            )  # fmt: skip

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.stop()
        if self._jobs is not None:
            self._jobs.close()
        if self._catalog is not None:
            self._catalog.dispose()

    def logs(self) -> str:
        return "\n".join(f"=== {p.name}\n{p.output()[-4000:]}" for p in self.procs)

    def by_pid(self, pid: int) -> Proc:
        return next(p for p in self.procs if p.pid == pid)

    # -- looking at the shared databases -----------------------------------------------

    @property
    def catalog(self) -> Engine:
        if self._catalog is None:
            self._catalog = create_engine(sqlalchemy_url(self.database_url))
        return self._catalog

    @property
    def jobs(self) -> JobEngine:
        if self._jobs is None:
            self._jobs = JobEngine(self.database_url)
        return self._jobs

    def job(self, job_id: str) -> Job:
        return self.jobs.get(int(job_id))

    def scalar(self, query: Any) -> Any:
        with self.catalog.connect() as conn:
            return conn.execute(query).scalar()

    def user_id(self, address: str) -> str:
        value = self.scalar(select(users.c.id).where(users.c.email == address))
        assert value is not None, f"no user {address}"
        return str(value)

    def users_with(self, address: str) -> int:
        return int(self.scalar(select(func.count()).where(users.c.email == address)))

    def notifications_of(self, user_id: str) -> list[tuple[str, str]]:
        with self.catalog.connect() as conn:
            rows = conn.execute(
                select(notifications.c.kind, notifications.c.message)
                .where(notifications.c.user_id == user_id)
                .order_by(notifications.c.id)
            ).all()  # fmt: skip
        return [(r[0], r[1]) for r in rows]

    def tenant_databases(self, slug: str) -> list[str]:
        """The databases (PostgreSQL) or files (SQLite) that exist for ``slug``."""
        base = slug.replace("-", "_")
        if self.database_url.startswith("postgresql"):
            with self.catalog.connect() as conn:
                return [
                    r[0]
                    for r in conn.execute(
                        text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                        {"p": f"diquis_tenant_{base}%"},
                    )
                ]
        folder = self.tmp / "data" / "tenants"
        return sorted(p.name for p in folder.glob(f"{base}*.db")) if folder.exists() else []

    def tenant_url(self, slug: str) -> str:
        base = slug.replace("-", "_")
        if self.database_url.startswith("postgresql"):
            return self.database_url.rpartition("/")[0] + f"/diquis_tenant_{base}"
        return f"sqlite:///{self.tmp / 'data' / 'tenants' / (base + '.db')}"

    def tenant_seed(self, slug: str) -> tuple[str | None, int]:
        """(the seeded tenant name, audit log rows) from the tenant's own database."""
        engine = create_engine(sqlalchemy_url(self.tenant_url(slug)))
        try:
            with engine.connect() as conn:
                name = conn.execute(
                    text("SELECT value FROM tenant_settings WHERE key = 'name'")
                ).scalar()
                audit = conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
            return name, int(audit or 0)
        finally:
            engine.dispose()


# -- HTTP and hub clients -------------------------------------------------------------------


async def login(base: str, address: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        reply = await client.post("/api/auth/login", json={"email": address, "password": password})
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


def api(base: str, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=base, headers=headers, timeout=10)


async def wait_status(
    client: httpx.AsyncClient, tenant_id: str, status: str, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        tenant: dict[str, Any] = (await client.get(f"/api/tenants/{tenant_id}")).json()
        if not seen or seen[-1] != tenant["status"]:
            seen.append(tenant["status"])
        if tenant["status"] == status:
            return tenant
        if time.monotonic() > deadline:
            raise AssertionError(f"tenant went through {seen}, never {status} in {timeout}s")
        await asyncio.sleep(0.05)


class HubListener:
    """A pysignalr connection recording what arrives, with the wall-clock time of arrival."""

    def __init__(self, base: str, token: str) -> None:
        self.client = SignalRClient(
            f"{base}/hubs/notifications", headers={"Authorization": f"Bearer {token}"}
        )
        self.received: list[tuple[float, str, list[Any]]] = []
        self.opened = asyncio.Event()
        for method in ("ReceiveNotification", "TenantStatusChanged"):
            self.client.on(method, self._recorder(method))

        async def on_open() -> None:
            self.opened.set()

        self.client.on_open(on_open)

    def _recorder(self, method: str) -> Callable[[list[Any]], Any]:
        async def record(args: list[Any]) -> None:
            self.received.append((time.time(), method, args))

        return record

    def of(self, method: str) -> list[list[Any]]:
        return [args for _, m, args in self.received if m == method]

    def arrival(self, method: str, args: list[Any]) -> float:
        return next(at for at, m, a in self.received if m == method and a == args)

    def statuses(self, tenant_id: str) -> list[str]:
        return [a[0]["status"] for a in self.of("TenantStatusChanged") if a[0]["id"] == tenant_id]


@contextlib.asynccontextmanager
async def listening(base: str, token: str) -> AsyncIterator[HubListener]:
    listener = HubListener(base, token)
    task = asyncio.create_task(listener.client.run())
    try:
        await asyncio.wait_for(listener.opened.wait(), 10)
        await asyncio.sleep(0.2)  # on_connected (group joins) has run on the server
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
