"""Fixtures of the chaos suite: private servers, real ``diquis`` processes, sizes, reports.

The short version runs by default (``make test``); ``DIQUIS_CHAOS=full`` (``make chaos``)
runs the long one. Each scenario prints what it did and what it checked (``pytest -s``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, inspect

from diquis.tenancy.infrastructure import migrations
from diquis.tenancy.infrastructure.db import make_engine, sqlalchemy_url
from tests.conftest import need
from tests.support.net import free_port
from tests.tenancy.proc_stack import ROOT_EMAIL, ROOT_PASSWORD, Mailbox, Proc, Stack

from .servers import PrivatePostgres, PrivateRedis, postgres_missing, redis_missing

FULL = os.environ.get("DIQUIS_CHAOS", "short").strip().lower() == "full"


@dataclass(frozen=True)
class Sizes:
    """How much each scenario does: the short version (make test) or the full one."""

    tenants: int
    kill_seconds: float
    engine_jobs: int
    load_clients: int
    load_creates: int
    smtp_outage: float
    postgres_outage: float
    cancellations: int


SIZES = (
    Sizes(tenants=100, kill_seconds=40, engine_jobs=10_000, load_clients=200, load_creates=2_000,
          smtp_outage=30, postgres_outage=15, cancellations=4)
    if FULL
    else Sizes(tenants=20, kill_seconds=10, engine_jobs=1_000, load_clients=50, load_creates=200,
               smtp_outage=10, postgres_outage=5, cancellations=2)
)  # fmt: skip
MODE = "full" if FULL else "short"


def budget(short: float, full: float) -> float:
    """A time-out (seconds) for the running version."""
    return full if FULL else short


class Report:
    """What a scenario did and how many things it checked, printed as one block at the end."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.started = time.monotonic()
        self.lines: list[str] = []
        self.checks = 0

    def did(self, line: str) -> None:
        self.lines.append(f"  did:     {line}")

    def saw(self, line: str) -> None:
        self.lines.append(f"  saw:     {line}")

    def checked(self, what: str, count: int = 1) -> None:
        """Record ``count`` assertions that held (call after asserting)."""
        self.checks += count
        self.lines.append(f"  checked: {what} ({count})")

    def text(self, outcome: str) -> str:
        took = time.monotonic() - self.started
        head = f"[chaos:{MODE}] {self.scenario} -- {outcome} in {took:.1f}s, {self.checks} checks"
        return "\n".join([head, *self.lines])


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[Report]:
    """A report printed after the test (shown with ``-s`` and by ``make chaos``)."""
    rep = Report(request.node.name)
    yield rep
    failed = getattr(request.node, "chaos_failed", False)
    print("\n" + rep.text("FAILED" if failed else "passed"), flush=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    rep = yield
    if call.when == "call" and getattr(rep, "failed", False):
        item.chaos_failed = True  # type: ignore[attr-defined]
    return rep


# -- private servers --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """One private PostgreSQL cluster for the session (scenarios may stop and restart it)."""
    reason = postgres_missing()
    need(reason is None, reason or "")
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    reason = redis_missing()
    need(reason is None, reason or "")
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg(private_postgres: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The private PostgreSQL, running at the start of the test and left running after it."""
    private_postgres.ensure_running()
    yield private_postgres
    private_postgres.ensure_running()


@pytest.fixture
def redis(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    private_redis.ensure_running()
    yield private_redis
    private_redis.ensure_running()


@pytest.fixture(scope="session")
def tenant_tables(private_postgres: PrivatePostgres) -> set[str]:
    """Every table a tenant database must have: what the tenant migrations create."""
    private_postgres.ensure_running()
    url = private_postgres.create_database(f"chaos_reference_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    try:
        migrations.upgrade(engine, "tenant")
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# -- stacks of real processes -----------------------------------------------------------------


class Smtp:
    """An aiosmtpd server that can go down and come back on the same port, same mailbox."""

    def __init__(self) -> None:
        self.box = Mailbox()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class ChaosStack(Stack):
    """A :class:`Stack` whose workers run with the chaos suite's concurrency."""

    killed: list[int] = field(default_factory=list)

    def worker(self, name: str, concurrency: int = 20, **extra: str) -> Proc:  # type: ignore[override]
        args = ["worker", "--concurrency", str(concurrency), "--heartbeat-interval", "0.3",
                "--server-timeout", "2", "--shutdown-timeout", "3"]  # fmt: skip
        return self._start(name, args, None, **extra)


StackFactory = Callable[..., ChaosStack]


@pytest.fixture
def stacks(tmp_path: Path, pg: PrivatePostgres, smtp: Smtp) -> Iterator[StackFactory]:
    """Make stacks on a fresh catalog database in the private PostgreSQL; stop them after."""
    made: list[ChaosStack] = []

    def make(backplane_url: str | None = None, **env: str) -> ChaosStack:
        catalog = pg.create_database(f"chaos_{uuid.uuid4().hex[:12]}")
        stack = ChaosStack(tmp_path, catalog, backplane_url or catalog, smtp.port, env=dict(env))
        made.append(stack)
        stack.cli("create-superadmin", "--email", ROOT_EMAIL, "--password", ROOT_PASSWORD)
        return stack

    yield make
    for stack in made:
        stack.stop()
