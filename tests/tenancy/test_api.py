"""Scenario A and B through the HTTP API and the hub, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from sqlalchemy import create_engine, func, select, text

from diquis.identity import ROLE_ADMIN, Principal, issue_token
from diquis.jobs import State
from diquis.tenancy.infrastructure.db import notifications, sqlalchemy_url, users
from tests.support.wait import eventually

from .conftest import AppFactory, listening, set_password_token


async def test_scenario_a_superadmin_creates_a_tenant(start_app: AppFactory) -> None:
    with start_app() as run:
        async with listening(run.base, run.admin_token) as hub, run.client(run.admin_token) as api:
            started = time.monotonic()
            reply = await api.post(
                "/api/tenants", json={"name": "Acme Corp", "admin_email": "Boss@Acme.test"}
            )
            assert time.monotonic() - started < 0.5  # AC1
            assert reply.status_code == 202, reply.text
            body = reply.json()
            assert body["status"] == "Pending" and body["name"] == "Acme Corp"
            tenant = await run.wait_status(body["id"], "Active")
            assert tenant["admin_email"] == "boss@acme.test"
            await hub.wait_for(lambda: bool(hub.of("ReceiveNotification")))
            assert hub.of("ReceiveNotification") == [["Success", "Tenant Acme Corp is ready."]]
            statuses = [args[0]["status"] for args in hub.of("TenantStatusChanged")]
            assert statuses == ["Provisioning", "Active"]
            # the steps, live: database 1/4 -> migrations 2/4 -> seed 3/4 -> e-mail 4/4 -> done
            await hub.wait_for(
                lambda: any(a[0]["percent"] == 100 for a in hub.of("TenantProgress"))
            )
            steps = [
                (a[0]["step"], a[0]["label"], a[0]["percent"]) for a in hub.of("TenantProgress")
            ]
            assert steps == [
                (1, "Creating the database", 0),
                (2, "Running migrations", 25),
                (3, "Seeding", 50),
                (4, "Sending welcome e-mail", 75),
                (4, "Ready", 100),
            ]
            assert all(
                a[0]["id"] == body["id"] and a[0]["steps"] == 4 for a in hub.of("TenantProgress")
            )
            order = [m for m, _ in hub.received if m != "ReceiveNotification"]
            # the e-mail step is announced before the badge turns Active
            assert order.index("TenantStatusChanged", 1) > order.index("TenantProgress", 3)
        await eventually(lambda: run.app.jobs.get(int(body["job_id"])).state is State.SUCCEEDED)
        job = run.app.jobs.get(int(body["job_id"]))
        assert job.progress == 100 and job.progress_message == "4/4 Ready"
        assert job.tags == ("tenant:acme-corp",)
        assert job.target == "tenancy.ProvisionTenantJob.execute"
        # the tenant's own database: migrated and seeded
        engine = create_engine(sqlalchemy_url(run.app.tenant_databases.url("acme-corp")))
        with engine.connect() as conn:
            name = conn.execute(text("SELECT value FROM tenant_settings WHERE key = 'name'"))
            assert name.scalar() == "Acme Corp"
            assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 1
        engine.dispose()
        # exactly one welcome e-mail, with a set-password link
        [welcome] = run.mailbox.to("boss@acme.test")
        assert "Welcome" in welcome["Subject"]
        assert set_password_token(welcome)


async def test_scenario_b_public_signup_then_tenant_admin_logs_in(start_app: AppFactory) -> None:
    with start_app() as run:
        async with run.client() as anonymous:
            reply = await anonymous.post(
                "/api/signup", json={"organization": "Globex", "email": "hank@globex.test"}
            )
            assert reply.status_code == 202, reply.text
            assert "e-mail" in reply.json()["message"]
        tenant_id = await _tenant_id(run, "Globex")
        await run.wait_status(tenant_id, "Active")
        await eventually(lambda: len(run.mailbox.to("hank@globex.test")) == 1)
        assert (
            run.app.catalog.run_sync(
                lambda c: c.execute(select(func.count()).select_from(notifications)).scalar()
            )
            == 0
        )  # nobody to tell in real time: the visitor's tab may be gone
        token = set_password_token(run.mailbox.to("hank@globex.test")[0])
        async with run.client() as anonymous:
            weak = await anonymous.post(
                "/api/auth/set-password", json={"token": token, "password": "short"}
            )
            assert weak.status_code == 422
            assert weak.json()["detail"][0]["loc"] == ["body", "password"]
            ok = await anonymous.post(
                "/api/auth/set-password", json={"token": token, "password": "globex-rules-2026"}
            )
            assert ok.status_code == 204
            again = await anonymous.post(
                "/api/auth/set-password", json={"token": token, "password": "globex-rules-2027"}
            )
            assert again.status_code == 422
            assert "used" in again.json()["detail"][0]["msg"]
        admin_token = await run.login("hank@globex.test", "globex-rules-2026")
        async with run.client(admin_token) as api:
            me = (await api.get("/api/me")).json()
            assert me["role"] == "Admin" and me["tenant_id"] == tenant_id
            assert (await api.get(f"/api/tenants/{tenant_id}")).status_code == 200
            assert (await api.get("/api/tenants")).status_code == 403
            forbidden = await api.post(
                "/api/tenants", json={"name": "Evil", "admin_email": "e@x.io"}
            )
            assert forbidden.status_code == 403


async def test_a_failing_step_fails_the_tenant_then_retry_converges(
    start_app: AppFactory,
) -> None:
    with start_app(DIQUIS_FAULTS="migrate:1") as run:
        async with listening(run.base, run.admin_token) as hub, run.client(run.admin_token) as api:
            body = (
                await api.post("/api/tenants", json={"name": "Initech", "admin_email": "p@i.test"})
            ).json()
            failed = await run.wait_status(body["id"], "Failed")
            assert failed["last_error"] == "migrate failed: injected fault in step migrate"
            await hub.wait_for(lambda: bool(hub.of("ReceiveNotification")))
            kind, message = hub.of("ReceiveNotification")[0]
            assert kind == "Error" and message.startswith("Provisioning failed: Initech")
            # the engine retries with backoff (its write follows the job's own)
            await eventually(lambda: run.app.jobs.get(int(body["job_id"])).state is State.SCHEDULED)
            job = run.app.jobs.get(int(body["job_id"]))
            failure = next(h for h in job.history if h.state is State.FAILED)
            assert "injected fault" in failure.data["exception_message"]
            assert "Traceback" in failure.data["stack_trace"]
            retried = await api.post(f"/api/tenants/{body['id']}/retry")
            assert retried.status_code == 202
            await run.wait_status(body["id"], "Active")
            await hub.wait_for(lambda: len(hub.of("ReceiveNotification")) == 2)
            assert hub.of("ReceiveNotification")[1] == ["Success", "Tenant Initech is ready."]
            again = await api.post(f"/api/tenants/{body['id']}/retry")
            assert again.status_code == 409
        # the welcome e-mail is the job's last step, after the Success notification
        await eventually(lambda: run.app.jobs.get(int(body["job_id"])).state is State.SUCCEEDED)
        assert len(run.mailbox.to("p@i.test")) == 1
        statuses = [a[0]["status"] for a in hub.of("TenantStatusChanged")]
        assert statuses == ["Provisioning", "Failed", "Provisioning", "Active"]


async def test_bad_input_is_refused_and_nothing_is_created(start_app: AppFactory) -> None:
    with start_app() as run:
        async with run.client(run.admin_token) as api:
            for name in ['x"; DROP DATABASE test; --', "../../etc", "Аcme", "a" * 500, "", "   ",
                         "admin", "-"]:  # fmt: skip
                reply = await api.post("/api/tenants", json={"name": name, "admin_email": "a@b.io"})
                assert reply.status_code == 422, (name, reply.text)
                assert reply.json()["detail"][0]["loc"][-1] == "name"
            for address in ["not-an-email", "a@b", "x" * 300 + "@b.io", ROOT_ADMIN]:
                reply = await api.post(
                    "/api/tenants", json={"name": "Fine", "admin_email": address}
                )
                assert reply.status_code == 422, (address, reply.text)
                assert reply.json()["detail"][0]["loc"][-1] == "admin_email"
            missing = await api.post("/api/tenants", json={"name": "Fine"})
            assert missing.status_code == 422
            assert (await api.get("/api/tenants")).json()["total"] == 0
            first = await api.post(
                "/api/tenants", json={"name": "Umbrella", "admin_email": "u@u.io"}
            )
            assert first.status_code == 202
            for clash in ("Umbrella", "umbrella", "UMBRELLA!"[:-1]):
                dup = await api.post("/api/tenants", json={"name": clash, "admin_email": "v@u.io"})
                assert dup.status_code == 422, clash
            assert (await api.get("/api/tenants")).json()["total"] == 1
        async with run.client() as anonymous:
            assert (await anonymous.post("/api/tenants", json={})).status_code == 401
            assert (await anonymous.get("/api/me")).status_code == 401
        async with run.client("not-a-token") as bad:
            assert (await bad.get("/api/me")).status_code == 401
        assert not list((run.app.settings.data_dir / "tenants").glob("*etc*"))


ROOT_ADMIN = "root@platform.test"


async def test_a_tenant_admin_never_hears_of_other_tenants(start_app: AppFactory) -> None:
    with start_app() as run:
        async with run.client(run.admin_token) as api:
            a = (
                await api.post("/api/tenants", json={"name": "Alpha", "admin_email": "a@a.io"})
            ).json()
            await run.wait_status(a["id"], "Active")
        await eventually(lambda: len(run.mailbox.to("a@a.io")) == 1)
        async with run.client() as anonymous:
            token = set_password_token(run.mailbox.to("a@a.io")[0])
            reply = await anonymous.post(
                "/api/auth/set-password", json={"token": token, "password": "alpha-admin-pw-1"}
            )
            assert reply.status_code == 204, reply.text
        alpha = await run.login("a@a.io", "alpha-admin-pw-1")
        async with listening(run.base, alpha) as hub, run.client(run.admin_token) as api:
            b = (
                await api.post("/api/tenants", json={"name": "Beta", "admin_email": "b@b.io"})
            ).json()
            await run.wait_status(b["id"], "Active")
            await api.post(f"/api/tenants/{a['id']}/retry")  # 409, but harmless
            await asyncio.sleep(0.5)
        assert hub.received == []
        async with run.client(alpha) as api:
            assert (await api.get(f"/api/tenants/{b['id']}")).status_code == 404


METRICS_TOKEN = "operators-only-metrics-token"


async def test_inbox_login_logout_and_service_endpoints(start_app: AppFactory) -> None:
    with start_app(DIQUIS_METRICS_TOKEN=METRICS_TOKEN) as run:
        async with run.client(run.admin_token) as api:
            body = (
                await api.post("/api/tenants", json={"name": "Hooli", "admin_email": "g@h.io"})
            ).json()
            await run.wait_status(body["id"], "Active")
            await _wait_async(api, "/api/notifications?unread=true", 1)
            inbox = (await api.get("/api/notifications?unread=true")).json()
            assert inbox["unread"] == 1
            note = inbox["items"][0]
            assert note["type"] == "Success" and note["read_at"] is None
            assert (await api.post(f"/api/notifications/{note['id']}/read")).status_code == 204
            assert (await api.get("/api/notifications?unread=true")).json()["unread"] == 0
            assert (await api.post("/api/notifications/999999/read")).status_code == 404
            await eventually(lambda: run.app.jobs.get(int(body["job_id"])).state is State.SUCCEEDED)
            operator = {"Authorization": f"Bearer {METRICS_TOKEN}"}
            metrics = (await api.get("/metrics", headers=operator)).text
            # the provisioning job ran here (the minutely tenancy.reconcile may have too)
            succeeded = re.search(r'diquis_jobs\{state="Succeeded"\} (\d+)\.0', metrics)
            assert succeeded is not None and int(succeeded.group(1)) >= 1, metrics
            assert (
                'diquis_job_duration_seconds_count{outcome="succeeded",'
                'target="tenancy.ProvisionTenantJob.execute"} 1.0'
            ) in metrics
            assert "diquis_hub_connections" in metrics
            assert (await api.get("/healthz")).json() == {"status": "ok"}
            assert (await api.get("/readyz")).json() == {"status": "ready"}
            assert "/api/tenants" in (await api.get("/openapi.json")).json()["paths"]
        async with run.client() as anonymous:
            wrong = await anonymous.post(
                "/api/auth/login", json={"email": ROOT_ADMIN, "password": "nope-nope-nope"}
            )
            assert wrong.status_code == 401
            good = await anonymous.post(
                "/api/auth/login", json={"email": ROOT_ADMIN, "password": "platform-admin-pw-42"}
            )
            cookie = good.headers["set-cookie"]
            assert "diquis_session=" in cookie and "HttpOnly" in cookie
            assert "samesite=lax" in cookie.lower()
            out = await anonymous.post("/api/auth/logout")
            assert out.status_code == 204
            assert 'diquis_session=""' in out.headers["set-cookie"]


async def test_signups_are_rate_limited_across_processes(start_app: AppFactory) -> None:
    with start_app() as run, run.app.catalog.engine.connect():
        async with run.client() as anonymous:
            codes = []
            for i in range(7):
                reply = await anonymous.post(
                    "/api/signup", json={"organization": f"Org {i}", "email": f"o{i}@o.io"}
                )
                codes.append(reply.status_code)
        assert codes[:5] == [202] * 5
        assert codes[5:] == [429, 429]
        # the counter lives in the catalog, where every web process sees it
        count = run.app.catalog.run_sync(
            lambda c: c.execute(text("SELECT sum(count) FROM rate_limits")).scalar()
        )
        assert count >= 7


def test_migrate_is_idempotent_and_upgrades_tenant_databases(start_app: AppFactory) -> None:
    with start_app() as run:
        reply = httpx.post(
            f"{run.base}/api/tenants", json={"name": "Stark", "admin_email": "t@s.io"},
            headers={"Authorization": f"Bearer {run.admin_token}"},
        )  # fmt: skip
        tenant_id = reply.json()["id"]
        asyncio.run(run.wait_status(tenant_id, "Active"))
        assert run.app.migrate(tenants=True) == ["stark"]
        assert run.app.migrate(tenants=True) == ["stark"]
        assert (
            run.app.catalog.run_sync(
                lambda c: c.execute(select(func.count()).select_from(users)).scalar()
            )
            == 2
        )


async def _tenant_id(run: object, name: str) -> str:
    app = run.app  # type: ignore[attr-defined]
    items, _ = await app.tenants.list(100, 0)
    return next(t.id for t in items if t.name == name)


async def _wait_async(api: object, path: str, unread: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (await api.get(path)).json()["unread"] < unread:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_routing_of_the_web_app_dashboard_and_api(start_app: AppFactory) -> None:
    with start_app() as run:
        web = httpx.Client(base_url=run.base, follow_redirects=False)
        assert web.get("/hangfire").status_code == 308
        assert web.get("/hangfire").headers["location"] == "/hangfire/"
        assert web.get("/api/nothing-here").status_code == 404
        assert web.get("/hubs/nothing-here").status_code == 404
        if (run.app.settings.web_dir / "index.html").exists():
            page = web.get("/set-password?token=abc")  # a client-side route
            assert page.status_code == 200 and "<div id=" in page.text
        web.close()


def test_the_dev_mailbox_exists_only_in_dev_mode(start_app: AppFactory) -> None:
    for dev, expected in (("1", 200), ("0", 404)):
        with start_app(DIQUIS_DEV=dev, DIQUIS_SMTP_URL="") as run:
            reply = httpx.get(
                f"{run.base}/api/dev/mailbox",
                headers={"Authorization": f"Bearer {run.admin_token}"},
            )
            assert reply.status_code == expected, dev


async def test_the_dashboard_shows_a_failed_provisioning_job_to_super_admins_only(
    start_app: AppFactory,
) -> None:
    with start_app(DIQUIS_FAULTS="migrate:1") as run:
        async with run.client(run.admin_token) as api:
            body = (
                await api.post("/api/tenants", json={"name": "Soylent", "admin_email": "s@s.io"})
            ).json()
            await run.wait_status(body["id"], "Failed")
        # the engine writes the job's failure just after the job marks the tenant Failed
        await eventually(lambda: run.app.jobs.get(int(body["job_id"])).state is State.SCHEDULED)
        cookies = {"diquis_session": run.admin_token}
        async with httpx.AsyncClient(base_url=run.base, cookies=cookies) as browser:
            page = await browser.get(f"/hangfire/jobs/{body['job_id']}")
            assert page.status_code == 200
            assert "ProvisioningError" in page.text
            assert "injected fault in step migrate" in page.text
            assert "Traceback" in page.text
            listed = await browser.get("/hangfire/jobs/scheduled?q=tenant:soylent")
            assert listed.status_code == 200
            assert f"/hangfire/jobs/{body['job_id']}" in listed.text
            other = await browser.get("/hangfire/jobs/scheduled?q=tenant:nobody")
            assert f"/hangfire/jobs/{body['job_id']}" not in other.text
        async with run.client() as anonymous:
            login = await anonymous.get("/hangfire/", follow_redirects=False)
            assert login.status_code in (302, 303, 307)
            assert "/hangfire/login" in login.headers["location"]
        # a tenant admin's session is refused
        tenant_admin = issue_token(run.app.settings.secret_key, Principal("u", ROLE_ADMIN, "t"))
        async with httpx.AsyncClient(
            base_url=run.base, cookies={"diquis_session": tenant_admin}
        ) as other:
            assert (await other.get("/hangfire/")).status_code == 403
