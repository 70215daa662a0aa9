"""Issue 15 through the API: every field error at once, account recovery, tenant search."""

from __future__ import annotations

import asyncio
import re
import time
from email.message import Message

from .conftest import AppFactory, Running, body_text, listening, set_password_token

NEW_PASSWORD = "Copper-Lantern-Orbit-77"


async def _mail(run: Running, address: str, count: int, timeout: float = 15) -> list[Message]:
    deadline = time.monotonic() + timeout
    while len(run.mailbox.to(address)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{address} got {len(run.mailbox.to(address))} e-mails")
        await asyncio.sleep(0.05)
    return run.mailbox.to(address)


async def _active_tenant(run: Running, name: str, email: str) -> str:
    async with run.client(run.admin_token) as api:
        reply = await api.post("/api/tenants", json={"name": name, "admin_email": email})
        assert reply.status_code == 202, reply.text
    tenant_id: str = reply.json()["id"]
    await run.wait_status(tenant_id, "Active")
    await _mail(run, email, 1)
    return tenant_id


async def test_every_bad_field_is_reported_at_once_in_form_order(start_app: AppFactory) -> None:
    with start_app() as run:
        async with run.client() as anonymous:
            reply = await anonymous.post("/api/signup", json={"organization": "", "email": "x"})
            assert reply.status_code == 422
            assert [d["loc"][-1] for d in reply.json()["detail"]] == ["organization", "email"]
        async with run.client(run.admin_token) as api:
            reply = await api.post("/api/tenants", json={"name": "../x", "admin_email": "nope"})
            assert [d["loc"][-1] for d in reply.json()["detail"]] == ["name", "admin_email"]


async def test_forgot_password_answers_alike_and_mails_a_one_hour_single_use_link(
    start_app: AppFactory,
) -> None:
    with start_app() as run:
        await _active_tenant(run, "Initech", "peter@initech.test")
        async with run.client() as anonymous:
            # the welcome link names its account without a GET carrying the token
            [welcome] = run.mailbox.to("peter@initech.test")
            info = await anonymous.post(
                "/api/auth/password-token", json={"token": set_password_token(welcome)}
            )
            assert info.json() == {
                "email": "peter@initech.test", "organization": "Initech", "purpose": "welcome",
            }  # fmt: skip
            known = await anonymous.post(
                "/api/auth/forgot-password", json={"email": "Peter@Initech.test"}
            )
            unknown = await anonymous.post(
                "/api/auth/forgot-password", json={"email": "nobody@initech.test"}
            )
            assert known.status_code == unknown.status_code == 202
            assert known.json() == unknown.json()
            bad = await anonymous.post("/api/auth/forgot-password", json={"email": "nope"})
            assert bad.status_code == 422
            [_, reset] = await _mail(run, "peter@initech.test", 2)
            assert "one hour" in body_text(reset)
            token = set_password_token(reset)
            info = await anonymous.post("/api/auth/password-token", json={"token": token})
            assert info.json()["purpose"] == "reset"
            # the reset link replaced the welcome link
            old = await anonymous.post(
                "/api/auth/password-token", json={"token": set_password_token(welcome)}
            )
            assert old.status_code == 422
            done = await anonymous.post(
                "/api/auth/set-password", json={"token": token, "password": NEW_PASSWORD}
            )
            assert done.status_code == 204, done.text
            again = await anonymous.post("/api/auth/password-token", json={"token": token})
            assert again.status_code == 422
            assert "used already" in again.json()["detail"][0]["msg"]
        assert await run.login("peter@initech.test", NEW_PASSWORD)
        await asyncio.sleep(0.5)
        assert not run.mailbox.to("nobody@initech.test")


async def test_change_password_needs_the_current_one(start_app: AppFactory) -> None:
    with start_app() as run:
        async with run.client(run.admin_token) as api:
            wrong = await api.post(
                "/api/auth/change-password",
                json={"current_password": "wrong-one", "new_password": "short"},
            )
            assert wrong.status_code == 422
            fields = [d["loc"][-1] for d in wrong.json()["detail"]]
            assert fields == ["current_password", "new_password"]
            ok = await api.post(
                "/api/auth/change-password",
                json={"current_password": "platform-admin-pw-42", "new_password": NEW_PASSWORD},
            )
            assert ok.status_code == 204, ok.text
        async with run.client() as anonymous:
            refused = await anonymous.post(
                "/api/auth/change-password",
                json={"current_password": "x", "new_password": NEW_PASSWORD},
            )
            assert refused.status_code == 401
        assert await run.login("root@platform.test", NEW_PASSWORD)


async def test_resend_welcome_sends_a_new_link_and_voids_the_old(start_app: AppFactory) -> None:
    with start_app() as run:
        tenant_id = await _active_tenant(run, "Hooli", "gavin@hooli.test")
        async with run.client(run.admin_token) as api:
            assert (await api.post("/api/tenants/nope/resend-welcome")).status_code == 404
            first = await api.post(f"/api/tenants/{tenant_id}/resend-welcome")
            assert first.status_code == 202
            mails = await _mail(run, "gavin@hooli.test", 2)
            second = await api.post(f"/api/tenants/{tenant_id}/resend-welcome")
            assert second.status_code == 202
            mails = await _mail(run, "gavin@hooli.test", 3)
            tokens = [set_password_token(m) for m in mails]
            assert len(set(tokens)) == 3
            check = [
                (await api.post("/api/auth/password-token", json={"token": t})).status_code
                for t in tokens
            ]
            assert check == [422, 422, 200]
            pending = await api.post(
                "/api/tenants", json={"name": "Later", "admin_email": "l@later.test"}
            )
            reply = await api.post(f"/api/tenants/{pending.json()['id']}/resend-welcome")
            assert reply.status_code in (202, 409)  # 409 unless it became Active already
            if reply.status_code == 409:
                assert "Active" in reply.json()["detail"]


async def test_tenants_search_and_filter_and_linked_notifications(start_app: AppFactory) -> None:
    with start_app(DIQUIS_FAULTS="migrate:99") as run:
        async with listening(run.base, run.admin_token) as hub, run.client(run.admin_token) as api:
            for name, email in (
                ("Stark Industries", "tony@stark.test"),
                ("Wayne Enterprises", "b@w.test"),
            ):
                reply = await api.post("/api/tenants", json={"name": name, "admin_email": email})
                assert reply.status_code == 202, reply.text
            await hub.wait_for(lambda: len(hub.of("ReceiveNotification")) >= 2, timeout=20)
            # ReceiveNotification keeps its two arguments
            assert all(len(args) == 2 for args in hub.of("ReceiveNotification"))
            page = (await api.get("/api/tenants", params={"q": "STARK"})).json()
            assert [t["name"] for t in page["items"]] == ["Stark Industries"]
            assert page["total"] == 1
            by_mail = (await api.get("/api/tenants", params={"q": "b@w.te"})).json()
            assert [t["name"] for t in by_mail["items"]] == ["Wayne Enterprises"]
            assert (await api.get("/api/tenants", params={"q": "%"})).json()["total"] == 0
            assert (await api.get("/api/tenants", params={"q": "_"})).json()["total"] == 0
            failed = (await api.get("/api/tenants", params={"status": "Failed"})).json()
            assert failed["total"] == 2
            active = (await api.get("/api/tenants", params={"status": "Active", "q": "s"})).json()
            assert active == {"items": [], "total": 0}
            bad = await api.get("/api/tenants", params={"status": "Nope"})
            assert bad.status_code == 422
            inbox = (await api.get("/api/notifications")).json()["items"]
            ids = {t["id"] for t in page["items"] + by_mail["items"]}
            links = {item["link"] for item in inbox}
            assert links == {f"/tenants/{i}" for i in ids}
            assert all(re.fullmatch(r"/tenants/[0-9a-f-]+", link) for link in links)
