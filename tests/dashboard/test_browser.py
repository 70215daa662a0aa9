"""The dashboard in Chromium against a real uvicorn server with a job server running in it."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from diquis.jobs import JobEngine, RetryPolicy, State
from tests.support.threaded import ThreadedServer
from tests.support.wait import wait_until

from .conftest import XSS, make_app

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class Live:
    """The running app: its URL, engine, and the ids and gate the scenario uses."""

    url: str
    engine: JobEngine
    failed: int
    gate: threading.Event
    runs: list[int]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """uvicorn on a free port serving the test login API and the dashboard, with a job server."""
    engine = JobEngine(f"sqlite:///{tmp_path_factory.mktemp('dash')}/jobs.db")
    gate = threading.Event()
    runs: list[int] = []

    # a provisioning stand-in: fails its first two runs (retries exhausted), then succeeds
    # once the test opens the gate, so the test sees the change arrive live
    @engine.job(name="tenancy.provision_tenant", retry=RetryPolicy(attempts=1, delays=[0]))
    def provision_tenant(tenant_id: int, name: str) -> str:
        runs.append(tenant_id)
        if len(runs) <= 2:
            raise RuntimeError(f"could not create the database for {name}")
        assert gate.wait(20), "the test never opened the gate"
        return f"tenant {tenant_id} ready"

    @engine.job(name="reports.build_invoice")
    def build_invoice(n: int) -> int:
        return n

    @engine.job(name="mail.send_welcome", retry=RetryPolicy(attempts=5, delays=[3600]))
    def send_welcome(email: str) -> None:
        raise ConnectionError(f"SMTP server refused {email}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server = engine.server(
            queues=["default", "mail"], concurrency=4, poll_interval=0.2, scheduler_interval=0.2
        )
        await server.start()
        try:
            yield
        finally:
            await server.stop(timeout=5)

    app = make_app(engine)
    app.router.lifespan_context = lifespan
    server = ThreadedServer(app, join_timeout=15, lifespan="on", timeout_graceful_shutdown=2)
    server.start()

    failed = engine.enqueue(provision_tenant, 7, f"Acme {XSS}", tags=["tenant:acme"])
    for n in range(12):
        engine.enqueue(build_invoice, n, tags=[f"tenant:{'acme' if n % 2 else 'globex'}"])
    engine.enqueue(send_welcome, "admin@acme.test", queue="mail", tags=["tenant:acme"])
    engine.schedule(build_invoice, 99, delay=7200)
    engine.recurring.add_or_update("nightly-invoices", build_invoice, "0 3 * * *", 1, tz="UTC")
    wait_until(lambda: engine.get(failed).state is State.FAILED, 20, "the job to fail twice")
    try:
        yield Live(server.base, engine, failed, gate, runs)
    finally:
        gate.set()
        server.stop()
        engine.close()


def _login(context: Any, live: Live, email: str, password: str, start: str = "/hangfire/") -> Any:
    page = context.new_page()
    page.goto(live.url + start)
    assert "/hangfire/login" in page.url
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/hangfire/login" not in url, timeout=10_000)
    return page


def test_anonymous_visitor_gets_the_login_page(browser: Any, live: Live) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    response = page.goto(live.url + "/hangfire/jobs/failed")
    assert response.status == 200
    assert page.url.endswith("/hangfire/login?next=%2Fhangfire%2Fjobs%2Ffailed")
    assert page.locator("#login-form").is_visible()
    assert page.request.get(live.url + "/hangfire/api/stats").status == 401

    page.fill("#email", "root@diquis.test")
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    page.locator("#login-error").wait_for(state="visible")
    assert page.locator("#login-error").inner_text() == "Wrong e-mail or password."
    context.close()


def test_tenant_admin_gets_403(browser: Any, live: Live) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = _login(context, live, "admin@acme.test", "tenant admin password")
    assert "super admins only" in page.inner_text("body")
    response = page.goto(live.url + f"/hangfire/jobs/{live.failed}")
    assert response.status == 403
    assert page.request.get(live.url + "/hangfire/api/stats").status == 403
    context.close()


def test_superadmin_requeues_a_failed_job_and_sees_it_succeed_live(
    browser: Any, live: Live, artifacts_dir: str
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = _login(
        context, live, "root@diquis.test", "correct horse battery", "/hangfire/jobs/failed"
    )
    assert page.url.endswith("/hangfire/jobs/failed")
    page.click(f'a[href="/hangfire/jobs/{live.failed}"] >> nth=0')
    page.wait_for_url(f"**/hangfire/jobs/{live.failed}")

    # the exception and its stack trace; the XSS probe in the arguments renders as text
    exception = page.locator(".exception")
    assert "builtins.RuntimeError" in exception.inner_text()
    assert "<script>window.__xss = 1</script>" in exception.locator(".exc-message").inner_text()
    assert "Traceback (most recent call last)" in exception.locator(".stack").inner_text()
    assert "<script>window.__xss = 1</script>" in page.locator("pre.json").inner_text()
    assert page.locator(".timeline .event-failed").count() == 2
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
    page.screenshot(path=os.path.join(artifacts_dir, "dashboard-job-failed-desktop.png"))

    # a POST without the CSRF token is refused and changes nothing
    status = page.evaluate(
        """async (id) => (await fetch('/hangfire/actions/requeue', {
            method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json'}, body: 'id=' + id})).status""",
        live.failed,
    )
    assert status == 403
    assert live.engine.get(live.failed).state is State.FAILED

    # requeue; the job runs and waits at the gate, so the page shows it before it ends
    page.click(".job-head button:has-text('Requeue')")
    page.wait_for_url(f"**/hangfire/jobs/{live.failed}")
    page.locator(".flash").wait_for()
    assert "Requeued 1 job." in page.inner_text(".flash")
    page.locator("#live-status[data-state=open]").wait_for()
    wait_until(lambda: len(live.runs) == 3, 10, "the requeued job to start")
    page.locator(".job-head .badge-processing").wait_for(timeout=10_000)
    page.evaluate("window.__sameDocument = 42")
    time.sleep(0.3)  # the live feed is attached; now let the worker finish the job
    live.gate.set()
    page.locator(".job-head .badge-succeeded").wait_for(timeout=10_000)
    assert page.evaluate("window.__sameDocument") == 42  # updated in place, never reloaded
    assert live.engine.get(live.failed).state is State.SUCCEEDED
    assert page.locator(".timeline .event-succeeded").count() == 1
    assert "Duration" in page.inner_text(".facts >> nth=1")
    page.screenshot(
        path=os.path.join(artifacts_dir, "dashboard-job-succeeded-desktop.png"), full_page=True
    )
    context.close()


def test_screenshots_desktop_and_phone(browser: Any, live: Live, artifacts_dir: str) -> None:
    shots = Path(artifacts_dir)
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        page = _login(context, live, "root@diquis.test", "correct horse battery")
        page.locator("#live-status[data-state=open]").wait_for()
        page.screenshot(path=str(shots / f"dashboard-overview-{name}.png"), full_page=True)
        for path, label in [
            ("/hangfire/jobs/succeeded", "succeeded"),
            ("/hangfire/retries", "retries"),
            ("/hangfire/recurring", "recurring"),
            ("/hangfire/servers", "servers"),
            (f"/hangfire/jobs/{live.failed}", "job"),
        ]:
            page.goto(live.url + path)
            assert page.locator("main h1").is_visible()
            page.screenshot(path=str(shots / f"dashboard-{label}-{name}.png"), full_page=True)
        # keyboard: the skip link is the first stop and moves focus to the content
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # nothing overflows the viewport sideways (tables scroll inside their own box)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        context.close()
    login = browser.new_context(viewport=PHONE).new_page()
    login.goto(live.url + "/hangfire/login")
    login.screenshot(path=str(shots / "dashboard-login-phone.png"))
    login.context.close()
