"""Shared fixtures: real services, or a clear skip (a failure when DIQUIS_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator

import pytest

REQUIRE_SERVICES = os.environ.get("DIQUIS_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get(
    "DIQUIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DIQUIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def need(available: bool, reason: str) -> None:
    """Skip the test when a service is missing, unless CI demands every service."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"DIQUIS_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of a reachable PostgreSQL server's test database."""
    need(_port_open("127.0.0.1", 5432), "no PostgreSQL server on 127.0.0.1:5432")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"diquis_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = postgres_server_url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a reachable Redis server."""
    need(_port_open("127.0.0.1", 6379), "no Redis server on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture(scope="session")
def node_bin() -> str:
    """The path of Node.js, needed to drive the official SignalR client."""
    path = shutil.which("node")
    need(path is not None, "Node.js is not installed")
    assert path is not None
    return path


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium driven by Playwright (sync API), shared by one module's tests.

    Module scope on purpose: while Playwright's sync API is open it marks an event loop as
    running on the main thread, which breaks asyncio tests that run after it.
    """
    need(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> str:
    """Where end-to-end tests save screenshots (not committed)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path
