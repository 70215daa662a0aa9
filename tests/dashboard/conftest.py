"""Fixtures for the dashboard: an engine with jobs in every state, on every storage backend."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from diquis.dashboard import create_dashboard
from diquis.identity import ROLE_ADMIN, ROLE_SUPERADMIN, SESSION_COOKIE, Principal, issue_token
from diquis.identity.dashboard_access import SuperAdminFromSessionCookie
from diquis.jobs import JobEngine, RetryPolicy

from ..conftest import CHROMIUM, CHROMIUM_ARGS, need

SECRET = "dashboard-test-secret-0123456789abcdef"
XSS = "<script>window.__xss = 1</script><img src=x onerror=alert(1)>"

SUPERADMIN = Principal("1", ROLE_SUPERADMIN, None, "root@diquis.test")
TENANT_ADMIN = Principal("2", ROLE_ADMIN, "acme", "admin@acme.test")
USERS = {
    "root@diquis.test": ("correct horse battery", SUPERADMIN),
    "admin@acme.test": ("tenant admin password", TENANT_ADMIN),
}


def token_for(principal: Principal) -> str:
    """A session token as the real login API issues it."""
    return issue_token(SECRET, principal)


async def fake_login(request: Request) -> Response:
    """What ``POST /api/auth/login`` does: check the password, set the session cookie."""
    data = await request.json()
    user = USERS.get(str(data.get("email", "")))
    if user is None or user[0] != data.get("password"):
        return JSONResponse({"error": "invalid credentials"}, status_code=401)
    token = token_for(user[1])
    response = JSONResponse({"access_token": token, "token_type": "bearer"})
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/")
    return response


def make_app(engine: JobEngine, **options: Any) -> Starlette:
    """A host app: the test login API plus the dashboard at /hangfire."""
    options.setdefault("authorization", SuperAdminFromSessionCookie(SECRET))
    dashboard = create_dashboard(engine, **options)
    return Starlette(
        routes=[
            Route("/api/auth/login", fake_login, methods=["POST"]),
            Mount("/hangfire", app=dashboard),
        ]
    )


def csrf_token(html: str) -> str:
    """The CSRF token a rendered page carries in its action forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def run_in_thread(coroutine_function: Any) -> Any:
    """Run an async function to completion on a fresh loop in its own thread (safe even when
    this thread already has a running loop, e.g. Playwright's)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coroutine_function())))
    thread.start()
    thread.join(60)
    assert result, "the coroutine did not finish"
    return result[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium for one test module, closed when the module ends.

    Overrides the session-wide fixture: while Playwright's sync API is open it leaves its
    event loop marked as running on the main thread, which breaks every asyncio test that
    runs after it in the session (here: test_live.py, and tests/jobs, tests/realtime).
    """
    need(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty job store URL for each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@dataclass
class Seeded:
    """Ids of the jobs the seed created, by what they show."""

    failed: int
    succeeded: int
    continuation: int
    awaiting: int
    scheduled: int
    retrying: int
    enqueued: int
    deleted: int
    processing: int
    recurring_job: int


def seed(engine: JobEngine) -> Seeded:
    """Jobs in every state, a live and a dead server, a recurring job."""

    @engine.job(name="tenancy.provision_tenant", retry=RetryPolicy(attempts=0))
    def provision_tenant(tenant_id: int, name: str) -> None:
        raise RuntimeError(f"could not create the database for {name}")

    @engine.job(name="demo.ok")
    def ok(n: int) -> int:
        return n * 2

    @engine.job(name="demo.flaky", retry=RetryPolicy(attempts=3, delays=[3600]))
    def flaky(n: int) -> None:
        raise ValueError(f"flaky {n}")

    failed = engine.enqueue(provision_tenant, 7, XSS, tags=["tenant:acme"])
    succeeded = engine.enqueue(ok, 21, tags=["tenant:globex"])
    continuation = engine.continue_with(failed, ok, 1, on="any")
    scheduled = engine.schedule(ok, 3, delay=3600, unique_key="report:daily")
    awaiting = engine.continue_with(scheduled, ok, 4)
    retrying = engine.enqueue(flaky, 5)
    engine.recurring.add_or_update("nightly-report", ok, "0 3 * * *", 9, tz="Europe/Amsterdam")
    recurring_job = engine.recurring.trigger("nightly-report")
    run_in_thread(engine.drain)
    enqueued = engine.enqueue(ok, 6, queue="critical")
    deleted = engine.enqueue(ok, 8)
    engine.delete(deleted)
    processing = engine.enqueue(ok, 10, queue="slow")
    now = engine.now()
    storage = engine.storage
    storage.register_server("web-1:100:live", "web-1", 100, ["default", "slow"], 4, now)
    storage.register_server("web-2:200:dead", "web-2", 200, ["default"], 2, now - 3600)
    assert [j.id for j in storage.claim("web-1:100:live", ["slow"], 1, now)] == [processing]
    return Seeded(
        failed=failed,
        succeeded=succeeded,
        continuation=continuation,
        awaiting=awaiting,
        scheduled=scheduled,
        retrying=retrying,
        enqueued=enqueued,
        deleted=deleted,
        processing=processing,
        recurring_job=recurring_job,
    )


@pytest.fixture
def engine(storage_url: str) -> Iterator[JobEngine]:
    """An engine on a fresh store."""
    eng = JobEngine(storage_url)
    yield eng
    eng.close()


@pytest.fixture
def seeded(engine: JobEngine) -> Seeded:
    """The engine's store with jobs in every state."""
    started = time.monotonic()
    result = seed(engine)
    assert time.monotonic() - started < 20
    return result
