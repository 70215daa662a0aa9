"""Issue 15 in Chromium, at 1280 px and 390 px: what a new user trips over, and axe-core.

Each test drives a real ``diquis serve`` (web app included); the accessibility scan runs
axe-core (``web/node_modules/axe-core``) on every page of the web app, light and dark,
and allows no serious or critical violation. Screenshots go to ``test-artifacts/web``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.conftest import need

from .conftest import REPO, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, DiquisServer
from .test_e2e import DESKTOP, PHONE, log_in

AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
ADMIN = "peter@initech.test"
NEW_PASSWORD = "Copper-Lantern-Orbit-77"
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


@pytest.fixture(scope="module")
def server(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DiquisServer, str]]:
    """One server with an Active tenant "Initech" (admin peter@initech.test) for the module."""
    from .conftest import WEB_DIST, free_port

    need((WEB_DIST / "index.html").exists(), "web/dist is not built")
    data = tmp_path_factory.mktemp("polish") / "data"
    data.mkdir()
    running = DiquisServer(data, free_port())
    running.cli("migrate")
    running.cli("create-superadmin", "--email", SUPERADMIN_EMAIL, "--password", SUPERADMIN_PASSWORD)
    running.start()
    token = httpx.post(
        f"{running.url}/api/auth/login",
        json={"email": SUPERADMIN_EMAIL, "password": SUPERADMIN_PASSWORD},
    ).json()["access_token"]
    api = httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {token}"})
    started = api.post("/api/tenants", json={"name": "Initech", "admin_email": ADMIN}).json()
    for _ in range(300):
        if api.get(f"/api/tenants/{started['id']}").json()["status"] == "Active":
            break
        time.sleep(0.1)
    yield running, token
    api.close()
    running.stop()


def mails(server: DiquisServer, token: str, to: str) -> list[dict[str, Any]]:
    """The dev mailbox's e-mails to ``to``, oldest first."""
    reply = httpx.get(f"{server.url}/api/dev/mailbox", headers={"Authorization": f"Bearer {token}"})
    return [m for m in reversed(reply.json()["items"]) if m["to"] == to]


def link_path(mail: dict[str, Any]) -> str:
    found = re.search(r"https?://[^/\s]+(/set-password\?token=[\w-]+)", mail["text"])
    assert found, mail["text"]
    return found.group(1)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # bypass_csp: axe-core is injected as an inline script, which the app's CSP forbids
    ctx = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    yield ctx
    ctx.close()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
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


def check_page(page: Page, shots: Path | None, name: str) -> list[str]:
    """Scan the page light and dark at its size; screenshots; problems found, as text."""
    problems: list[str] = []
    size = page.viewport_size or DESKTOP
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        page.wait_for_timeout(100)
        problems += [f"{name} {size['width']} {scheme}: {v}" for v in serious_violations(page)]
        if shots is not None:
            page.screenshot(path=str(shots / f"{name}-{size['width']}-{scheme}.png"))
    page.emulate_media(color_scheme="light")
    return problems


@pytest.fixture
def shots(artifacts_dir: str) -> Path:
    path = Path(artifacts_dir) / "web"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("size", SIZES)
def test_every_page_of_the_web_app_passes_axe_light_and_dark(
    server: tuple[DiquisServer, str], context: BrowserContext, size: ViewportSize, shots: Path
) -> None:
    need(AXE.exists(), f"{AXE} is missing (cd web && npm ci)")
    running, token = server
    page = context.new_page()
    page.set_viewport_size(size)
    problems: list[str] = []
    for path, name, heading in (
        ("/login", "login", "Log in"),
        ("/signup", "signup", "Create your workspace"),
        ("/forgot-password", "forgot-password", "Forgot your password?"),
        ("/set-password?token=not-a-real-one", "dead-link", "This link no longer works"),
    ):
        page.goto(running.url + path)
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        problems += check_page(page, shots, name)
    # a form showing its errors
    page.goto(running.url + "/signup")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Please fix these 2 fields:")).to_be_visible()
    problems += check_page(page, shots, "signup-errors")
    # a fresh welcome link (each resend replaces the older link)
    httpx.post(
        f"{running.url}/api/tenants/{tenant_id(running, token)}/resend-welcome",
        headers={"Authorization": f"Bearer {token}"},
    )
    page.wait_for_timeout(1500)
    page.goto(running.url + link_path(mails(running, token, ADMIN)[-1]))
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    problems += check_page(page, shots, "set-password")
    # signed in as the super admin
    log_in(page, running, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Tenants", exact=True)).to_be_visible()
    expect(page.locator('tr[data-tenant="Initech"]')).to_be_visible()
    problems += check_page(page, shots, "tenants")
    page.get_by_role("button", name=re.compile("^Notifications")).click()
    expect(page.get_by_role("region", name="Notifications")).to_be_visible()
    problems += check_page(page, None, "inbox")
    page.keyboard.press("Escape")
    page.goto(f"{running.url}/tenants/{tenant_id(running, token)}")
    expect(page.get_by_role("heading", name="Initech")).to_be_visible()
    problems += check_page(page, shots, "tenant")
    page.goto(running.url + "/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    problems += check_page(page, shots, "account")
    page.goto(running.url + "/mailbox")
    expect(page.get_by_role("heading", name="Mailbox")).to_be_visible()
    problems += check_page(page, shots, "mailbox")
    page.goto(running.url + "/no-such-page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    problems += check_page(page, None, "not-found")
    page.close()
    assert not problems, "\n".join(problems)


def tenant_id(running: DiquisServer, token: str) -> str:
    reply = httpx.get(
        f"{running.url}/api/tenants", params={"q": "Initech"},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    found: str = reply.json()["items"][0]["id"]
    return found


@pytest.mark.parametrize("size", SIZES)
def test_form_errors_all_at_once_with_focus_and_a_busy_not_disabled_button(
    server: tuple[DiquisServer, str], context: BrowserContext, size: ViewportSize
) -> None:
    running, _ = server
    page = context.new_page()
    page.set_viewport_size(size)
    page.goto(running.url + "/signup")
    page.get_by_role("button", name="Sign up").click()
    summary = page.get_by_role("alert").filter(has_text="Please fix these 2 fields")
    expect(summary).to_have_attribute("aria-live", "assertive")
    expect(summary).to_contain_text("Organisation name: Required.")
    expect(summary).to_contain_text("Your work e-mail: Required.")
    expect(page.get_by_label("Organisation name")).to_be_focused()
    expect(page.get_by_label("Organisation name")).to_have_attribute("aria-invalid", "true")
    # the server's answer: every bad field, the first focused
    page.get_by_label("Organisation name").fill("../etc")
    page.get_by_label("Your work e-mail").fill("new@initech.test")
    page.get_by_label("Your work e-mail").press("Enter")
    expect(page.get_by_role("alert").filter(has_text="Organisation name:")).to_be_visible()
    expect(page.get_by_label("Organisation name")).to_be_focused()
    # login: the button keeps focus and says it is busy instead of being disabled
    page.goto(running.url + "/login")
    page.get_by_label("E-mail").fill("someone@initech.test")
    page.get_by_label("Password").fill("wrong-password-1")
    page.route("**/api/auth/login", lambda route: (page.wait_for_timeout(600), route.continue_()))
    button = page.get_by_role("button", name="Log in", exact=True)
    button.focus()
    page.keyboard.press("Enter")
    busy = page.get_by_role("button", name="Logging in…")
    expect(busy).to_have_attribute("aria-busy", "true")
    expect(busy).to_be_enabled()
    expect(busy).to_be_focused()
    expect(page.get_by_text("Wrong e-mail or password.")).to_be_visible()
    page.close()


def test_times_are_local_with_utc_tooltips_and_tick(
    server: tuple[DiquisServer, str], context: BrowserContext
) -> None:
    running, _ = server
    page = context.new_page()
    page.clock.install()
    log_in(page, running, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    updated = page.locator('tr[data-tenant="Initech"] time')
    expect(updated).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
    page.clock.fast_forward("05:00")
    expect(updated).to_have_text(re.compile(r"^\d+ min ago$"))
    page.close()


def test_forgot_password_reset_link_used_link_and_change_password(
    server: tuple[DiquisServer, str], context: BrowserContext
) -> None:
    running, token = server
    page = context.new_page()
    page.goto(running.url + "/login")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    before = len(mails(running, token, ADMIN))
    page.get_by_label("E-mail").fill(ADMIN)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    for _ in range(100):
        if len(mails(running, token, ADMIN)) > before:
            break
        page.wait_for_timeout(100)
    reset = mails(running, token, ADMIN)[-1]
    assert reset["subject"] == "Reset your Diquis password"
    link = link_path(reset)
    page.goto(running.url + link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    expect(page.get_by_test_id("account-for")).to_have_text(f"For {ADMIN} at Initech.")
    expect(page.locator("#password-rules")).to_contain_text("must not contain “peter”")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("Repeat the password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()
    # the same link again: what to do next, and the way there
    page.goto(running.url + link)
    expect(page.get_by_role("heading", name="This link has been used")).to_be_visible()
    page.get_by_role("link", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    log_in(page, running, ADMIN, NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Initech")).to_be_visible()
    page.locator('a[href="/account"]').click()
    page.get_by_label("Current password").fill(NEW_PASSWORD)
    page.get_by_label("New password", exact=True).fill("Velvet-Harbor-Quartz-19")
    page.get_by_label("Repeat the new password").fill("Velvet-Harbor-Quartz-19")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    log_in(page, running, ADMIN, "Velvet-Harbor-Quartz-19")
    expect(page.get_by_role("heading", name="Initech")).to_be_visible()
    page.close()


@pytest.mark.parametrize("size", SIZES)
def test_tenant_search_filter_job_link_inbox_link_and_resend(
    server: tuple[DiquisServer, str], context: BrowserContext, size: ViewportSize
) -> None:
    running, _ = server
    page = context.new_page()
    page.set_viewport_size(size)
    log_in(page, running, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    rows = page.locator("tr[data-tenant]")
    expect(rows).to_have_count(1)
    page.get_by_label("Search").fill("zzz")
    expect(page.get_by_text("No tenant matches.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/tenants\?q=zzz$"))
    page.get_by_label("Search").fill("INIT")
    expect(rows).to_have_count(1)
    page.get_by_label("Status").select_option("Failed")
    expect(page.get_by_text("No tenant matches.")).to_be_visible()
    page.get_by_label("Status").select_option("Active")
    expect(rows).to_have_count(1)
    # the inbox item links to the tenant it concerns
    page.get_by_role("button", name=re.compile("^Notifications")).click()
    page.get_by_role("link", name="View tenant").first.click()
    expect(page.get_by_role("heading", name="Initech")).to_be_visible()
    # resend welcome: a toast that waits while pointed at
    page.get_by_role("button", name="Resend welcome e-mail").click()
    toast = page.locator(".toast").filter(has_text="welcome e-mail is on its way")
    expect(toast).to_be_visible()
    toast.hover()
    expect(toast).to_have_attribute("data-paused", "true")
    # and on to its job in the jobs dashboard
    job = page.get_by_role("link", name=re.compile(r"^Job #\d+ in the jobs dashboard$"))
    href = job.get_attribute("href")
    assert href and re.fullmatch(r"/hangfire/jobs/\d+", href)
    job.click()
    expect(page).to_have_url(re.compile(r"/hangfire/jobs/\d+$"))
    expect(page.get_by_text("tenancy.ProvisionTenantJob").first).to_be_visible()
    # the job's tenant:<slug> tag leads back to the app's tenant list, searched for the slug
    # (the tenant page is keyed by id), and "Back to app" to the app
    tenant_link = page.get_by_role("link", name=re.compile(r"^Open tenant [\w-]+ in the app$"))
    expect(tenant_link.first).to_have_attribute("href", re.compile(r"^/tenants\?q=[\w-]+$"))
    expect(page.get_by_role("link", name="← Back to app")).to_have_attribute("href", "/")
    tenant_link.first.click()
    expect(page).to_have_url(re.compile(r"/tenants\?q=[\w-]+$"))
    expect(page.locator('tr[data-tenant="Initech"]')).to_be_visible()
    page.close()


def test_one_visual_system_wording_and_dark_mode(
    server: tuple[DiquisServer, str], context: BrowserContext
) -> None:
    running, _ = server
    page = context.new_page()
    page.emulate_media(color_scheme="dark")
    log_in(page, running, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(11, 16, 32)", background
    page.get_by_label("Search").focus()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.emulate_media(color_scheme="light")
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(244, 246, 251)", background
    page.close()
