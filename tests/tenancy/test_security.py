"""Security hardening through the real HTTP API, on SQLite and on PostgreSQL (issue 10)."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

from diquis.identity import ROLE_SUPERADMIN, Principal, issue_token
from diquis.settings import Settings
from diquis.tenancy.application.ports import Email
from diquis.tenancy.infrastructure.db import tenants
from tests.support.wait import eventually

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET, AppFactory, body_text, set_password_token

SIGNUP_ANSWER = {"message": "Thanks! Check your e-mail for a link to set your password."}


def _tenant_count(run: object) -> int:
    app = run.app  # type: ignore[attr-defined]
    return int(
        app.catalog.run_sync(
            lambda c: c.execute(select(func.count()).select_from(tenants)).scalar()
        )
    )


# -- sign-up: no enumeration, no budget burnt by junk ------------------------------------------


async def test_signup_answers_alike_and_tells_the_address_owner_by_email(
    start_app: AppFactory,
) -> None:
    with start_app() as run:
        async with run.client() as anonymous:
            first = await anonymous.post(
                "/api/signup", json={"organization": "Vandelay", "email": "art@vandelay.test"}
            )
            taken_name = await anonymous.post(
                "/api/signup", json={"organization": "vandelay", "email": "kramer@k.test"}
            )
            taken_email = await anonymous.post(
                "/api/signup", json={"organization": "Pendant", "email": ADMIN_EMAIL.upper()}
            )
            malformed = await anonymous.post(
                "/api/signup", json={"organization": "Fine", "email": "not-an-address"}
            )
        for reply in (first, taken_name, taken_email):
            assert reply.status_code == 202, reply.text
            assert reply.json() == SIGNUP_ANSWER
        assert malformed.status_code == 422
        assert malformed.json()["detail"][0]["loc"] == ["body", "email"]
        assert _tenant_count(run) == 1
        # the owners learn what happened, by e-mail, without any secret link
        await eventually(lambda: run.mailbox.to(ADMIN_EMAIL) and run.mailbox.to("kramer@k.test"))
        [someone] = run.mailbox.to(ADMIN_EMAIL)
        assert someone["Subject"] == "Someone tried to sign up with your address"
        [name_taken] = run.mailbox.to("kramer@k.test")
        assert name_taken["Subject"] == "That organisation name is taken"
        assert "choose another" in body_text(name_taken).lower()
        for notice in (someone, name_taken):
            assert "token=" not in body_text(notice)
        # the super admin's own form still says what is wrong
        async with run.client(run.admin_token) as api:
            dup = await api.post("/api/tenants", json={"name": "Vandelay", "admin_email": "v@v.io"})
            assert dup.status_code == 422 and dup.json()["detail"][0]["loc"][-1] == "name"


async def test_invalid_signups_do_not_use_up_the_signup_budget(start_app: AppFactory) -> None:
    with start_app() as run:
        async with run.client() as anonymous:
            for i in range(8):
                junk = await anonymous.post(
                    "/api/signup", json={"organization": f"Junk {i}", "email": f"bad{i}"}
                )
                assert junk.status_code == 422
            real = await anonymous.post(
                "/api/signup", json={"organization": "Real Co", "email": "real@real.test"}
            )
        assert real.status_code == 202, real.text
        counted = run.app.catalog.run_sync(
            lambda c: c.execute(text("SELECT max(count) FROM rate_limits")).scalar()
        )
        assert counted == 1


# -- passwords ----------------------------------------------------------------------------------


async def test_weak_passwords_are_refused_and_the_link_stays_usable(start_app: AppFactory) -> None:
    with start_app() as run:
        async with run.client(run.admin_token) as api:
            body = (
                await api.post(
                    "/api/tenants", json={"name": "Wernham Hogg", "admin_email": "dm@wh.test"}
                )
            ).json()
        await run.wait_status(body["id"], "Active")
        await eventually(lambda: len(run.mailbox.to("dm@wh.test")) == 1)
        token = set_password_token(run.mailbox.to("dm@wh.test")[0])
        async with run.client() as anonymous:
            for weak in ("qwerty12345", "abcdefghij", "Wernham Hogg", "dm@wh.test2026"):
                reply = await anonymous.post(
                    "/api/auth/set-password", json={"token": token, "password": weak}
                )
                assert reply.status_code == 422, weak
                assert reply.json()["detail"][0]["loc"] == ["body", "password"], reply.text
            ok = await anonymous.post(
                "/api/auth/set-password", json={"token": token, "password": "slough-paper-27!"}
            )
            assert ok.status_code == 204, ok.text
        assert await run.login("dm@wh.test", "slough-paper-27!")


# -- login throttling ---------------------------------------------------------------------------


async def test_failed_logins_are_throttled_per_account_across_processes(
    start_app: AppFactory,
) -> None:
    with start_app() as one, start_app() as two:
        async with one.client() as first, two.client() as second:
            for _ in range(5):
                wrong = await first.post(
                    "/api/auth/login", json={"email": ADMIN_EMAIL, "password": "guess-guess-1"}
                )
                assert wrong.status_code == 401
            # the right password, from another process, while the account is throttled
            right = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            held = await second.post("/api/auth/login", json=right)
            assert held.status_code == 429, held.text
            wait = int(held.headers["retry-after"])
            assert 1 <= wait <= 300
            assert f"try again in {wait} s" in held.json()["detail"]
            # an address without an account is throttled the same way
            for _ in range(6):
                ghost = await first.post(
                    "/api/auth/login", json={"email": "nobody@x.test", "password": "guess-guess-1"}
                )
            assert ghost.status_code == 429
            await asyncio.sleep(wait + 0.2)
            assert (await second.post("/api/auth/login", json=right)).status_code == 200
            # a success resets the account's counter: one more failure is a plain 401
            again = await first.post(
                "/api/auth/login", json={"email": ADMIN_EMAIL, "password": "guess-guess-1"}
            )
            assert again.status_code == 401


async def test_the_throttle_delay_doubles_up_to_five_minutes() -> None:
    from diquis.tenancy.infrastructure.login_throttle import PER_ACCOUNT, PER_CLIENT

    assert [PER_ACCOUNT.delay(n) for n in range(4, 10)] == [0, 1, 2, 4, 8, 16]
    assert PER_ACCOUNT.delay(40) == 300
    assert PER_CLIENT.delay(29) == 0 and PER_CLIENT.delay(30) == 1


async def test_failed_logins_are_throttled_per_client(start_app: AppFactory) -> None:
    with start_app() as run:
        async with run.client() as client:
            for i in range(30):
                wrong = await client.post(
                    "/api/auth/login", json={"email": f"u{i}@spray.test", "password": "Spring2026!"}
                )
                assert wrong.status_code == 401, i
            fresh = await client.post(
                "/api/auth/login", json={"email": "fresh@spray.test", "password": "Spring2026!"}
            )
            assert fresh.status_code == 429
            assert int(fresh.headers["retry-after"]) >= 1


# -- logout revokes the token -------------------------------------------------------------------


async def test_logout_revokes_the_token_for_the_api_the_hub_and_the_dashboard(
    start_app: AppFactory,
) -> None:
    with start_app() as run:
        token = await run.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        async with run.client(token) as api:
            assert (await api.get("/api/me")).status_code == 200
            out = await api.post("/api/auth/logout")
            assert out.status_code == 204
            me = await api.get("/api/me")
            assert me.status_code == 401 and "revoked" in me.json()["detail"]
            negotiate = await api.post("/hubs/notifications/negotiate?negotiateVersion=1")
            assert negotiate.status_code == 401
            hub_query = await api.post(
                f"/hubs/notifications/negotiate?negotiateVersion=1&access_token={token}",
                headers={"Authorization": ""},
            )
            assert hub_query.status_code == 401
        async with httpx.AsyncClient(
            base_url=run.base, cookies={"diquis_session": token}
        ) as browser:
            page = await browser.get("/hangfire/", follow_redirects=False)
            assert (
                page.status_code in (302, 303, 307)
                and "/hangfire/login" in page.headers["location"]
            )
            assert (await browser.get("/hangfire/api/stats")).status_code == 401
        # other sessions live on; logging out without a token is fine too
        async with run.client(run.admin_token) as api:
            assert (await api.get("/api/me")).status_code == 200
            assert (await api.get("/hangfire/api/stats")).status_code == 200
        async with run.client() as anonymous:
            assert (await anonymous.post("/api/auth/logout")).status_code == 204


# -- client input never makes a 5xx -------------------------------------------------------------


async def test_out_of_range_integers_get_a_4xx(start_app: AppFactory) -> None:
    huge = "99999999999999999999"
    with start_app() as run:
        async with run.client(run.admin_token) as api:
            for method, path in (
                ("POST", f"/api/notifications/{huge}/read"),
                ("POST", "/api/notifications/9223372036854775808/read"),
                ("GET", f"/api/tenants?offset={huge}"),
                ("GET", f"/api/tenants?limit={huge}"),
                ("GET", f"/hangfire/api/jobs/{huge}"),
                ("GET", f"/hangfire/jobs/{huge}"),
                ("GET", "/api/tenants/%00"),
            ):
                reply = await api.request(method, path)
                assert 400 <= reply.status_code < 500, (path, reply.status_code, reply.text)
            nul = await api.post("/api/auth/login", json={"email": "a\u0000@b.io", "password": "x"})
            assert nul.status_code == 422


async def test_request_bodies_are_capped(start_app: AppFactory) -> None:
    with start_app(DIQUIS_MAX_BODY_BYTES="100000") as run:
        async with run.client(run.admin_token) as api:
            fat = {"name": "Fatberg", "admin_email": "f@f.io", "padding": "x" * 200_000}
            reply = await api.post("/api/tenants", json=fat)
            assert reply.status_code == 413, reply.text
            assert "larger than 100000 bytes" in reply.json()["detail"]

            async def chunks():  # type: ignore[no-untyped-def]
                yield b'{"name": "Streamed", "admin_email": "s@s.io", "padding": "'
                for _ in range(30):
                    yield b"x" * 10_000
                yield b'"}'

            streamed = await api.post(
                "/api/tenants", content=chunks(), headers={"content-type": "application/json"}
            )
            assert streamed.status_code == 413
            small = await api.post("/api/tenants", json={"name": "Lean", "admin_email": "l@l.io"})
            assert small.status_code == 202
        assert _tenant_count(run) == 1
    assert Settings.from_env(
        {"DIQUIS_DATA_DIR": str(run.app.settings.data_dir)}
    ).max_body_bytes == (1024 * 1024)


# -- headers, metrics, schema, files ------------------------------------------------------------


def test_security_headers_on_the_api_docs_web_app_and_set_password(start_app: AppFactory) -> None:
    with start_app() as run:
        for path in ("/api/me", "/docs", "/", "/set-password?token=abc", "/openapi.json"):
            reply = httpx.get(run.base + path)
            csp = reply.headers.get("content-security-policy", "")
            script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
            assert script_src.split() == ["script-src", "'self'"], (path, csp)
            assert "frame-ancestors 'none'" in csp
            assert reply.headers["x-frame-options"] == "DENY"
            assert reply.headers["x-content-type-options"] == "nosniff"
        page = httpx.get(run.base + "/set-password?token=abc")
        assert page.headers["referrer-policy"] == "no-referrer"
        docs = httpx.get(run.base + "/docs").text
        assert "<script>" not in docs and "cdn" not in docs.lower()
        # the dashboard keeps its own stricter policy
        dashboard = httpx.get(run.base + "/hangfire/login")
        assert "default-src 'none'" in dashboard.headers["content-security-policy"]


def test_metrics_are_for_operators_only(start_app: AppFactory) -> None:
    with start_app() as run:
        assert httpx.get(f"{run.base}/metrics").status_code == 404
    token = "a-long-metrics-token-for-ops"
    with start_app(DIQUIS_METRICS_TOKEN=token) as run:
        assert httpx.get(f"{run.base}/metrics").status_code == 401
        wrong = httpx.get(f"{run.base}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        admin = httpx.get(
            f"{run.base}/metrics", headers={"Authorization": f"Bearer {run.admin_token}"}
        )
        assert admin.status_code == 401
        right = httpx.get(f"{run.base}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200 and "diquis_jobs" in right.text


def test_dev_routes_are_in_the_schema_only_in_dev_mode(start_app: AppFactory) -> None:
    for dev, present in (("1", True), ("0", False)):
        with start_app(DIQUIS_DEV=dev, DIQUIS_SMTP_URL="") as run:
            paths = httpx.get(f"{run.base}/openapi.json").json()["paths"]
            assert ("/api/dev/mailbox" in paths) is present, dev


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_data_dir_and_its_files_are_private(
    start_app: AppFactory, tmp_path: Path
) -> None:
    data = tmp_path / "private-data"
    data.mkdir(mode=0o755)
    with start_app(DIQUIS_DATA_DIR=str(data), DIQUIS_SMTP_URL="") as run:
        assert _mode(data) == 0o700
        url = run.app.settings.database_url
        if url.startswith("sqlite:///"):
            assert _mode(Path(url.removeprefix("sqlite:///"))) == 0o600
        assert run.app.mailbox is not None
        await run.app.mailbox.deliver(Email(to="x@y.io", subject="hi", text="secret link"))
        [mail] = list((data / "mailbox").glob("*.json"))
        assert _mode(mail) == 0o600 and _mode(data / "mailbox") == 0o700
        assert json.loads(mail.read_text())["to"] == "x@y.io"
    generated = tmp_path / "generated"
    Settings.from_env({"DIQUIS_DATA_DIR": str(generated)})
    assert _mode(generated) == 0o700 and _mode(generated / "secret_key") == 0o600


def test_tokens_carry_an_id_that_logout_can_revoke() -> None:
    from diquis.identity import verify_token

    token = issue_token(SECRET, Principal("u1", ROLE_SUPERADMIN, None))
    other = issue_token(SECRET, Principal("u1", ROLE_SUPERADMIN, None))
    first = verify_token(SECRET, token)
    assert first.token_id and first.token_id != verify_token(SECRET, other).token_id
    assert first.expires_at is not None and first.expires_at > time.time()
