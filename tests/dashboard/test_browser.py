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
from tests.conftest import need
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
    #: holds reports.export runs in Processing until set
    hold: threading.Event


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """uvicorn on a free port serving the test login API and the dashboard, with a job server."""
    engine = JobEngine(f"sqlite:///{tmp_path_factory.mktemp('dash')}/jobs.db")
    gate = threading.Event()
    hold = threading.Event()
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

    @engine.job(name="reports.export")
    def export(n: int) -> int:
        assert hold.wait(30), "the test never let the export finish"
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

    app = make_app(engine, tag_links={"tenant": "/tenants?q={value}"}, app_path="/")
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
        yield Live(server.base, engine, failed, gate, runs, hold)
    finally:
        gate.set()
        hold.set()
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
    page.locator(".toast").wait_for()
    assert "Requeued 1 job." in page.inner_text(".toast")
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


# -- issue 15: live refresh in place, phones, time, toasts, axe -------------------------

REMEMBER_FOCUS = """(selector) => {
    const el = document.querySelector(selector);
    el.focus();
    window.__focused = el;
    window.__sameDocument = true;
    return document.activeElement === el;
}"""
FOCUS_KEPT = "() => document.activeElement === window.__focused && window.__sameDocument === true"


def test_live_refresh_updates_every_region_in_place_keeping_focus_and_scroll(
    browser: Any, live: Live
) -> None:
    """Items 7 and 8: the heading count, the sidebar (counts and highlight), a job's timings,
    a server's heartbeat and the History chart all follow the live feed, while focus and
    the scroll position stay where the user left them."""
    context = browser.new_context(viewport={"width": 1280, "height": 420})
    page = _login(
        context, live, "root@diquis.test", "correct horse battery", "/hangfire/jobs/processing"
    )
    page.locator("#live-status[data-state=open]").wait_for()
    wait_until(lambda: live.engine.monitoring.count_jobs(state=State.PROCESSING) == 0, 20, "idle")
    page.reload()
    page.locator("#live-status[data-state=open]").wait_for()
    assert page.inner_text(".page-head .total") == "0"
    assert page.inner_text('.sidenav [data-count="Processing"]') == "0"

    # a list: focus the search box, scroll down, then a job starts processing
    assert page.evaluate(REMEMBER_FOCUS, "#q")
    page.keyboard.type("rep")
    page.evaluate("window.scrollTo(0, 120)")
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    export = live.engine.enqueue("reports.export", 1, tags=["tenant:acme"])
    page.wait_for_function("() => document.querySelector('.page-head .total').textContent === '1'")
    assert page.inner_text('.sidenav [data-count="Processing"]') == "1"
    assert page.locator(f'tr[data-key="{export}"]').count() == 1
    assert page.locator(f'tr[data-key="{export}"] a.target').inner_text() == "Export"
    assert page.evaluate(FOCUS_KEPT), "focus left the search box"
    assert page.input_value("#q") == "rep"  # what was being typed survives
    assert page.evaluate("window.scrollY") == scrolled

    # the job page: timings, badge and the sidebar's highlight follow the job
    page.goto(f"{live.url}/hangfire/jobs/{export}")
    page.locator("#live-status[data-state=open]").wait_for()
    assert page.get_attribute(".sidenav a[aria-current=page]", "href") == (
        "/hangfire/jobs/processing"
    )
    timings = page.inner_text(".facts >> nth=1")
    assert "Duration" not in timings and "Finished" not in timings
    assert page.evaluate(REMEMBER_FOCUS, "pre.json")
    page.evaluate("window.scrollTo(0, 200)")
    scrolled = page.evaluate("window.scrollY")
    live.hold.set()
    page.locator(".job-head .badge-succeeded").wait_for(timeout=10_000)
    page.wait_for_function(
        "() => document.querySelector('.sidenav a[aria-current=page]').getAttribute('href')"
        " === '/hangfire/jobs/succeeded'"
    )
    timings = page.inner_text(".facts >> nth=1")
    assert "Duration" in timings and "Finished" in timings
    assert page.evaluate(FOCUS_KEPT), "focus left the arguments"
    assert page.evaluate("window.scrollY") == scrolled

    # the overview: the History chart and the server's heartbeat age
    page.goto(f"{live.url}/hangfire/")
    page.locator("#live-status[data-state=open]").wait_for()
    history = page.locator(".chart-summary:not(#live-summary)")
    before = history.inner_text()
    heartbeat = page.locator(".shell tr[data-key] td:nth-child(6) time").first
    beat = heartbeat.get_attribute("datetime")
    assert page.evaluate(REMEMBER_FOCUS, ".tabs a:last-child")
    page.evaluate("window.scrollTo(0, 150)")
    scrolled = page.evaluate("window.scrollY")
    time.sleep(2.5)  # the server beats every 2 s
    live.engine.enqueue("reports.build_invoice", 100)
    page.wait_for_function(
        "(before) => document.querySelector('.chart-summary:not(#live-summary)').innerText"
        " !== before",
        arg=before,
        timeout=10_000,
    )
    assert heartbeat.get_attribute("datetime") != beat
    assert page.evaluate(FOCUS_KEPT), "focus left the range tab"
    assert page.evaluate("window.scrollY") == scrolled
    context.close()


def test_phone_navigation_tables_and_charts(browser: Any, live: Live, artifacts_dir: str) -> None:
    """Item 10 at 390 px: a one-line navigation, tables that say they scroll, readable
    chart labels, nothing wider than the screen."""
    context = browser.new_context(viewport=PHONE)
    page = _login(context, live, "root@diquis.test", "correct horse battery")
    for path in ("/hangfire/", "/hangfire/servers", "/hangfire/jobs/deleted"):  # long and short
        page.goto(live.url + path)
        nav = page.locator(".sidenav").bounding_box()
        assert nav is not None and nav["height"] <= 56, (path, nav)
    page.goto(live.url + "/hangfire/")
    assert page.evaluate(
        "(() => { const n = document.querySelector('.sidenav');"
        " return n.scrollWidth > n.clientWidth; })()"
    )
    sizes = page.eval_on_selector_all(
        ".chart text.axis",
        "els => els.filter(e => e.getBoundingClientRect().width > 0)"
        ".map(e => e.getBoundingClientRect().height)",
    )
    assert sizes and min(sizes) >= 9, sizes  # about 11 px glyphs, not 5 px
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.goto(live.url + "/hangfire/jobs/succeeded")
    frame = page.locator(".table-frame").first
    page.wait_for_function(
        "() => document.querySelector('.table-frame').classList.contains('scrolls')"
    )
    assert frame.locator(".scroll-hint").is_visible()
    page.locator(".table-wrap").first.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
    page.wait_for_function(
        "() => document.querySelector('.table-frame').classList.contains('at-end')"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=os.path.join(artifacts_dir, "dashboard-phone-list.png"))
    context.close()


def test_times_are_local_with_utc_tooltips_and_tick(browser: Any, live: Live) -> None:
    """Item 4: local time on the page, UTC in the tooltip, relative times tick every 20 s."""
    context = browser.new_context(viewport=DESKTOP, timezone_id="Asia/Kolkata")
    page = _login(context, live, "root@diquis.test", "correct horse battery")
    page.clock.install()
    page.goto(f"{live.url}/hangfire/jobs/{live.failed}")
    local = page.locator("time[data-kind=local]").first
    assert not local.inner_text().endswith("UTC")
    utc = local.get_attribute("title")
    assert utc is not None and utc.endswith(" UTC")
    # 05:30 ahead of UTC: the local text shows a different hour (or date) than the tooltip
    assert utc[11:16] not in local.inner_text()
    relative = page.locator("time[data-kind=relative]").first
    title = relative.get_attribute("title")
    assert title is not None and title.endswith(" UTC")
    before = relative.inner_text()
    page.clock.fast_forward(20_000)
    page.clock.run_for(100)
    assert relative.inner_text() != before
    context.close()


def test_toasts_pause_while_hovered_or_focused(browser: Any, live: Live) -> None:
    """Item 11: the action's message stays while pointed at or focused."""
    context = browser.new_context(viewport=DESKTOP)
    page = _login(context, live, "root@diquis.test", "correct horse battery", "/hangfire/recurring")
    page.clock.install()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Trigger now')")
    toast = page.locator(".toast")
    toast.wait_for()
    assert "Triggered 1 recurring job." in toast.inner_text()
    toast.hover()
    page.clock.run_for(12_000)
    assert toast.is_visible()
    page.mouse.move(5, 300)
    toast.locator(".toast-close").focus()
    page.clock.run_for(12_000)
    assert toast.is_visible()
    page.locator("main").focus()
    page.clock.run_for(9_000)
    assert toast.count() == 0
    context.close()


def test_brand_wording_and_back_to_app(browser: Any, live: Live) -> None:
    """Item 11: the web app's brand mark and "Log in / Log out"; item 9: back to the app."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(live.url + "/hangfire")
    assert "/hangfire/login" in page.url
    assert page.locator("h1").inner_text() == "Log in"
    assert page.locator("button[type=submit]").inner_text() == "Log in"
    assert page.locator(".brand svg.logo").count() == 1
    page = _login(context, live, "root@diquis.test", "correct horse battery")
    assert page.locator("button:has-text('Log out')").is_visible()
    assert page.get_attribute(".app-link", "href") == "/"
    # the brand square is the web app's indigo in both schemes
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        fill = page.eval_on_selector(".logo-square", "e => getComputedStyle(e).fill")
        assert fill == "rgb(79, 70, 229)", (scheme, fill)
    # focus rings: 2 px solid in the web app's --focus-ring, in both schemes
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    for scheme, ring in (("light", "rgb(79, 70, 229)"), ("dark", "rgb(165, 180, 252)")):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        style = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }"
        )
        assert style == ["solid", "2px", ring], (scheme, style)
    page.emulate_media(color_scheme="dark")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg in ("rgb(11, 16, 32)", "rgba(0, 0, 0, 0)"), bg
    assert (
        page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--bg').trim()")
        == "#0b1020"
    )
    context.close()


AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"


def _serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
          const result = await axe.run(document, { resultTypes: ["violations"] });
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
          }));
        }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280", "390"])
def test_every_dashboard_page_passes_axe_light_and_dark(
    browser: Any, live: Live, size: dict[str, int], artifacts_dir: str
) -> None:
    """Item 11: every page (log-in, overview, each list, a job, retries, recurring, servers)
    at 1280 and 390 px, light and dark: no serious or critical axe-core violation."""
    need(AXE.exists(), f"{AXE} is missing (cd web && npm ci)")
    shots = Path(artifacts_dir) / "dashboard"
    shots.mkdir(parents=True, exist_ok=True)
    # bypass_csp: axe-core is injected as an inline script, which the dashboard's CSP forbids
    context = browser.new_context(viewport=size, bypass_csp=True)
    page = context.new_page()
    problems: list[str] = []

    def scan(name: str) -> None:
        page.locator("main h1").first.wait_for()
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
            page.wait_for_timeout(100)
            problems.extend(
                f"{name} {size['width']} {scheme}: {v}" for v in _serious_violations(page)
            )
            page.screenshot(path=str(shots / f"{name}-{size['width']}-{scheme}.png"))
        page.emulate_media(color_scheme="light")

    page.goto(live.url + "/hangfire/login")
    scan("login")
    page = _login(context, live, "root@diquis.test", "correct horse battery")
    page.locator("#live-status[data-state=open]").wait_for()
    scan("overview")
    for path in (
        "/hangfire/jobs/enqueued",
        "/hangfire/jobs/scheduled",
        "/hangfire/jobs/processing",
        "/hangfire/jobs/succeeded",
        "/hangfire/jobs/failed",
        "/hangfire/jobs/deleted",
        "/hangfire/jobs/awaiting",
        "/hangfire/jobs/succeeded?q=tenant:ac&range=24h&size=20",
        f"/hangfire/jobs/{live.failed}",
        "/hangfire/retries",
        "/hangfire/recurring",
        "/hangfire/servers",
    ):
        page.goto(live.url + path)
        name = path.removeprefix("/hangfire/").replace("/", "-")
        name = "job" if name == f"jobs-{live.failed}" else name.replace("?", "-filtered?")
        scan(name.split("?")[0])
    assert not problems, "\n".join(problems)
    context.close()
