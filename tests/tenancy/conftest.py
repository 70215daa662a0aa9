"""A real Diquis app (uvicorn in a thread) on SQLite or PostgreSQL, with a real SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
import email
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from pysignalr.client import SignalRClient

from diquis.app import Diquis
from diquis.settings import Settings
from tests.support.net import free_port
from tests.support.threaded import ThreadedServer

SECRET = "tenancy-tests-secret-key-with-enough-bytes"
ADMIN_EMAIL = "root@platform.test"
ADMIN_PASSWORD = "platform-admin-pw-42"


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


def body_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def set_password_token(message: Message) -> str:
    found = re.search(r"/set-password\?token=([A-Za-z0-9_-]+)", body_text(message))
    assert found, body_text(message)
    return found.group(1)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@dataclass
class Running:
    """A running app and a client for its API."""

    app: Diquis
    base: str
    mailbox: Mailbox
    admin_token: str
    admin_id: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=10)

    async def login(self, address: str, password: str) -> str:
        async with self.client() as client:
            reply = await client.post(
                "/api/auth/login", json={"email": address, "password": password}
            )
        assert reply.status_code == 200, reply.text
        token: str = reply.json()["access_token"]
        return token

    async def wait_status(self, tenant_id: str, status: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        async with self.client(self.admin_token) as client:
            while True:
                tenant: dict[str, Any] = (await client.get(f"/api/tenants/{tenant_id}")).json()
                if tenant["status"] == status:
                    return tenant
                if time.monotonic() > deadline:
                    raise AssertionError(f"tenant stayed {tenant['status']}, wanted {status}")
                await asyncio.sleep(0.05)


AppFactory = Callable[..., contextlib.AbstractContextManager[Running]]


@pytest.fixture
def start_app(database_url: str, tmp_path: Path, smtp: tuple[Mailbox, int]) -> Iterator[AppFactory]:
    """Start the app with extra DIQUIS_* settings; stops it and drops tenant databases."""
    box, port = smtp
    started: list[Diquis] = []

    @contextlib.contextmanager
    def start(**env: str) -> Iterator[Running]:
        settings = Settings.from_env(
            {
                "DIQUIS_DATA_DIR": str(tmp_path / "data"),
                "DIQUIS_DATABASE_URL": database_url,
                "DIQUIS_SECRET_KEY": SECRET,
                "DIQUIS_SMTP_URL": f"smtp://127.0.0.1:{port}",
                "DIQUIS_PUBLIC_URL": "http://diquis.test",
                "DIQUIS_DEV": "1",
                # tenant databases share one PostgreSQL namespace: a prefix per test
                "DIQUIS_TENANT_DB_PREFIX": f"dqt_{uuid.uuid4().hex[:8]}_",
                **env,
            }
        )
        app = Diquis(settings)
        started.append(app)
        app.migrate()
        admin_id, _ = app.users.ensure_superadmin(ADMIN_EMAIL, ADMIN_PASSWORD)
        asgi = app.asgi(
            worker_options={
                "heartbeat_interval": 0.2,
                "server_timeout": 2.0,
                "scheduler_interval": 0.2,
            }
        )
        with ThreadedServer(asgi) as server:
            running = Running(app, server.base, box, "", admin_id)
            reply = httpx.post(
                f"{server.base}/api/auth/login",
                json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            )
            running.admin_token = reply.json()["access_token"]
            yield running

    yield start
    for app in started:
        app.tenant_databases.drop_all(app.tenants.slugs())
        _drop_prefixed(app)  # also those a test made by hand or left after a failure
        app.close()


def _drop_prefixed(app: Diquis) -> None:
    """Drop every PostgreSQL database named with this app's per-test tenant prefix."""
    dbs = app.tenant_databases
    if not dbs.postgres:
        return  # SQLite tenant files live in the test's tmp dir
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbs.catalog_url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (dbs.prefix,)
            )
        ]
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class HubListener:
    """A pysignalr connection that records what the server sends."""

    def __init__(self, base: str, token: str) -> None:
        self.client = SignalRClient(
            f"{base}/hubs/notifications", headers={"Authorization": f"Bearer {token}"}
        )
        self.received: list[tuple[str, list[Any]]] = []
        self.opened = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        for method in ("ReceiveNotification", "TenantStatusChanged", "TenantProgress"):
            self.client.on(method, self._recorder(method))

        async def on_open() -> None:
            self.opened.set()

        self.client.on_open(on_open)

    def _recorder(self, method: str) -> Callable[[list[Any]], Any]:
        async def record(args: list[Any]) -> None:
            self.received.append((method, args))

        return record

    def of(self, method: str) -> list[list[Any]]:
        return [args for m, args in self.received if m == method]

    async def wait_for(self, check: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"hub messages so far: {self.received}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def listening(base: str, token: str) -> AsyncIterator[HubListener]:
    listener = HubListener(base, token)
    listener.task = asyncio.create_task(listener.client.run())
    try:
        await asyncio.wait_for(listener.opened.wait(), 10)
        await asyncio.sleep(0.1)  # on_connected (group joins) has run
        yield listener
    finally:
        listener.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener.task
