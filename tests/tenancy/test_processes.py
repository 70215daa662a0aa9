"""Issue 4's process-level proofs: real ``diquis serve`` / ``diquis worker`` processes.

- kill -9 of the worker running a provisioning job: another worker reruns it and the
  tenant ends Active with one database, one admin, one e-mail, one Success notification;
- a failing step across processes: Failed with a safe reason, an Error notification,
  the exception in the job's history, then a retry (409 while queued/running) -> Active;
- the scale-out shape: 2 ``serve --no-worker`` + 1 ``worker`` on PostgreSQL with a
  PostgreSQL or Redis backplane; the SuperAdmin's connections on both web processes get
  the worker's Success within 5 s, and a tenant admin sees only their own tenant's events.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import func, select, update

from diquis.jobs import State
from diquis.tenancy.infrastructure.db import tenants
from tests.support.wait import eventually

from .proc_stack import (
    ROOT_EMAIL,
    ROOT_PASSWORD,
    Mailbox,
    Stack,
    api,
    listening,
    login,
    set_password_token,
    slug_of,
    smtp_server,
    unique,
    wait_status,
)

StackFactory = Callable[..., Stack]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The catalog database (indirectly parametrized: "sqlite" or "postgres")."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def stacks(tmp_path: Path, smtp: tuple[Mailbox, int], catalog_url: str) -> Iterator[StackFactory]:
    """Make stacks; afterwards stop their processes and drop their tenants' databases
    (before ``postgres_url`` drops the catalog: it was set up first, so it ends last)."""
    made: list[Stack] = []

    def make(backplane_url: str = "memory://") -> Stack:
        stack = Stack(tmp_path, catalog_url, backplane_url, smtp[1])
        made.append(stack)
        stack.cli("create-superadmin", "--email", ROOT_EMAIL, "--password", ROOT_PASSWORD)
        return stack

    yield make
    for stack in made:
        stack.stop()
        if stack.database_url.startswith("postgresql"):
            with stack.catalog.connect() as conn:
                slugs = [r[0] for r in conn.execute(select(tenants.c.slug))]
            stack.catalog.dispose()
            with psycopg.connect(stack.database_url, autocommit=True) as conn:
                for slug in slugs:
                    name = "diquis_tenant_" + slug.replace("-", "_")
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )


def _backplane(kind: str, request: pytest.FixtureRequest, catalog_url: str, tmp: Path) -> str:
    channel = f"t{uuid.uuid4().hex[:10]}"  # Redis channels are server-wide: keep tests apart
    if kind == "sqlite":
        return f"sqlite:///{tmp}/outbox.db"
    if kind == "postgres":
        return f"{catalog_url}?channel={channel}"
    return f"{request.getfixturevalue('redis_url')}?channel={channel}"


def _tenant_db_migrated(stack: Stack, slug: str) -> bool:
    from sqlalchemy import create_engine, text

    from diquis.tenancy.infrastructure.db import sqlalchemy_url

    if not stack.tenant_databases(slug):
        return False
    engine = create_engine(sqlalchemy_url(stack.tenant_url(slug)))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM diquis_tenant_version")).scalar() == 1
    except Exception:
        return False
    finally:
        engine.dispose()


# -- 1. kill -9 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catalog_url", "kill_point"),
    [
        # PostgreSQL: killed after CREATE DATABASE + migrations, before the admin and Active
        ("postgres", "migrated"),
        # SQLite: killed after the Success notification was stored, before the e-mail
        ("sqlite", "notified"),
        # SQLite, graceful: SIGTERM right after the job started; it is handed back at once
        ("sqlite", "sigterm"),
    ],
    indirect=["catalog_url"],
)
async def test_kill_9_of_the_worker_mid_provisioning_reruns_the_job_once(
    catalog_url: str,
    kill_point: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    stacks: StackFactory,
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox = smtp[0]
    backend = "postgres" if catalog_url.startswith("postgresql") else "sqlite"
    stack = stacks(_backplane(backend, request, catalog_url, tmp_path))
    slow = {"DIQUIS_DEMO_STEP_DELAY": "1.0"}  # five steps: a job lasts ~5 s
    web = stack.serve("web")
    workers = [stack.worker("worker1", **slow), stack.worker("worker2", **slow)]
    try:
        stack.ready(web, *workers)
        root = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        root_id = stack.user_id(ROOT_EMAIL)
        name = unique("Crashy")
        slug, admin = slug_of(name), f"boss-{uuid.uuid4().hex[:6]}@crashy.test"
        async with api(web.base, root) as client, listening(web.base, root) as hub:
            reply = await client.post("/api/tenants", json={"name": name, "admin_email": admin})
            assert reply.status_code == 202, reply.text
            tenant_id, job_id = reply.json()["id"], reply.json()["job_id"]

            running = await eventually(
                lambda: (job := stack.job(job_id)).state is State.PROCESSING and job.server_id,
                15, "the job to be Processing",
            )  # fmt: skip
            victim = stack.by_pid(int(str(running).split(":")[1]))
            survivor = next(w for w in workers if w is not victim)
            if kill_point == "migrated":
                await eventually(
                    lambda: _tenant_db_migrated(stack, slug), 15, "migrations", interval=0.1
                )
            elif kill_point == "notified":
                # killed after the push went out: the stored row alone comes a moment before
                # it, and a kill in between loses the live push (by design: it is in the inbox)
                await eventually(lambda: hub.of("ReceiveNotification"), 15, "the Success push")
            if kill_point == "sigterm":
                victim.popen.send_signal(signal.SIGTERM)  # shutdown timeout 3 s < the job's 5 s
                assert victim.popen.wait(timeout=15) == 0
                handed = stack.job(job_id)
                assert handed.state in (State.ENQUEUED, State.PROCESSING), handed.state
                assert handed.server_id != running
            else:
                victim.kill9()
                # what the dead worker left behind: an orphaned Processing job, half done
                orphan = stack.job(job_id)
                assert orphan.state is State.PROCESSING and orphan.server_id == running
            tenant = (await client.get(f"/api/tenants/{tenant_id}")).json()
            if kill_point == "migrated":
                assert tenant["status"] == "Provisioning"
                assert stack.tenant_databases(slug)  # created before the crash
            elif kill_point == "sigterm":
                assert tenant["status"] == "Provisioning"  # cancelled: not Failed
            else:
                assert tenant["status"] == "Active"
                assert stack.notifications_of(root_id) == [("Success", f"Tenant {name} is ready.")]
                assert mailbox.to(admin) == []  # the e-mail step had not run yet

            # the survivor reruns the job (after the 2 s server timeout, for kill -9)
            await wait_status(client, tenant_id, "Active", timeout=30)
            done = await eventually(
                lambda: (job := stack.job(job_id)).state is State.SUCCEEDED and job,
                30, "the job to succeed",
            )  # fmt: skip
            await eventually(lambda: hub.of("ReceiveNotification"), 10, "the Success push")

        runs = [h.server_id for h in done.history if h.state is State.PROCESSING]
        assert len(runs) == 2, done.history
        assert runs[0] == running and str(runs[1]).split(":")[1] == str(survivor.pid)
        why = "shut down before the job finished" if kill_point == "sigterm" else "heart-beating"
        assert any(
            h.state is State.ENQUEUED
            and f"Server {running} " in (h.reason or "")
            and why in (h.reason or "")
            for h in done.history
        ), [(h.state, h.reason) for h in done.history]
        # exactly one of everything
        expected_db = f"diquis_tenant_{slug.replace('-', '_')}" if backend == "postgres" else (
            f"{slug.replace('-', '_')}.db"
        )  # fmt: skip
        assert stack.tenant_databases(slug) == [expected_db]
        assert stack.tenant_seed(slug) == (name, 1)
        assert stack.users_with(admin) == 1
        assert len(mailbox.to(admin)) == 1
        assert set_password_token(mailbox.to(admin)[0])
        assert stack.notifications_of(root_id) == [("Success", f"Tenant {name} is ready.")]
        assert hub.of("ReceiveNotification") == [["Success", f"Tenant {name} is ready."]]
        assert survivor.popen.poll() is None  # still serving
    except BaseException:
        print(stack.logs())
        raise


# -- 2. failure path -------------------------------------------------------------------------


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
async def test_a_failing_step_in_the_worker_process_fails_then_retry_converges(
    catalog_url: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    stacks: StackFactory,
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox = smtp[0]
    url = catalog_url
    stack = stacks(_backplane("sqlite", request, url, tmp_path))
    web = stack.serve("web")
    worker = stack.worker("worker", DIQUIS_FAULTS="migrate:1", DIQUIS_DEMO_STEP_DELAY="0.3")
    try:
        stack.ready(web, worker)
        root = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        root_id = stack.user_id(ROOT_EMAIL)
        name = unique("Faulty")
        slug, admin = slug_of(name), f"p-{uuid.uuid4().hex[:6]}@faulty.test"
        async with api(web.base, root) as client, listening(web.base, root) as hub:
            reply = await client.post("/api/tenants", json={"name": name, "admin_email": admin})
            assert reply.status_code == 202, reply.text
            tenant_id, job_id = reply.json()["id"], reply.json()["job_id"]

            failed = await wait_status(client, tenant_id, "Failed", timeout=20)
            reason = failed["last_error"]
            assert reason == "migrate failed: injected fault in step migrate"
            for leak in ("Traceback", "File ", url, str(tmp_path), "sqlite", "postgres"):
                assert leak not in reason
            # the Error went to the initiator: stored (inbox) and pushed across processes
            error = ("Error", f"Provisioning failed: {name}: {reason}")
            # the job stores the notification just after it marks the tenant Failed
            await eventually(lambda: stack.notifications_of(root_id), 10, "the Error notification")
            assert stack.notifications_of(root_id) == [error]
            inbox = (await client.get("/api/notifications?unread=true")).json()
            assert [(n["type"], n["message"]) for n in inbox["items"]] == [error]
            await eventually(lambda: hub.of("ReceiveNotification"), 10, "the Error push")
            assert hub.of("ReceiveNotification") == [list(error)]
            await eventually(lambda: "Failed" in hub.statuses(tenant_id), 10, "Failed event")
            failed_event = next(
                a[0] for a in hub.of("TenantStatusChanged") if a[0]["status"] == "Failed"
            )
            assert failed_event == {
                "id": tenant_id, "name": name, "status": "Failed", "last_error": reason,
            }  # fmt: skip

            # the engine has the full exception (the dashboard shows it) and a retry planned
            job = await eventually(
                lambda: (j := stack.job(job_id)).state is State.SCHEDULED and j,
                10, "the job to be scheduled for retry",
            )  # fmt: skip
            failure = next(h for h in job.history if h.state is State.FAILED)
            assert failure.data["exception_type"].endswith("ProvisioningError")
            assert "injected fault in step migrate" in failure.data["exception_message"]
            assert "Traceback" in failure.data["stack_trace"]
            assert str(worker.pid) in str(failure.server_id)

            # retry by hand now instead of waiting Hangfire's 15-44 s backoff
            retried = await client.post(f"/api/tenants/{tenant_id}/retry")
            assert retried.status_code == 202, retried.text
            again = await client.post(f"/api/tenants/{tenant_id}/retry")
            assert again.status_code == 409, again.text  # Enqueued or Processing already
            assert stack.job(job_id).state in (State.ENQUEUED, State.PROCESSING)

            await wait_status(client, tenant_id, "Active", timeout=20)
            await eventually(
                lambda: stack.job(job_id).state is State.SUCCEEDED, 10, "the job to succeed"
            )
            await eventually(lambda: len(hub.of("ReceiveNotification")) == 2, 10, "Success")
            assert (await client.post(f"/api/tenants/{tenant_id}/retry")).status_code == 409
            assert hub.statuses(tenant_id) == ["Provisioning", "Failed", "Provisioning", "Active"]

        assert stack.notifications_of(root_id) == [error, ("Success", f"Tenant {name} is ready.")]
        assert hub.of("ReceiveNotification")[1] == ["Success", f"Tenant {name} is ready."]
        assert stack.tenant_databases(slug) == [f"{slug.replace('-', '_')}.db"]
        assert stack.tenant_seed(slug) == (name, 1)
        assert stack.users_with(admin) == 1
        assert len(mailbox.to(admin)) == 1
    except BaseException:
        print(stack.logs())
        raise


# -- 3. the scale-out shape ------------------------------------------------------------------


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("backplane", ["postgres", "redis"])
async def test_two_web_processes_and_a_worker_reach_every_connection_of_the_right_user(
    backplane: str,
    catalog_url: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    stacks: StackFactory,
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox = smtp[0]
    stack = stacks(_backplane(backplane, request, catalog_url, tmp_path))
    web1, web2 = stack.serve("web1"), stack.serve("web2")
    worker = stack.worker("worker", DIQUIS_DEMO_STEP_DELAY="0.2")
    try:
        stack.ready(web1, web2, worker)
        root = await login(web1.base, ROOT_EMAIL, ROOT_PASSWORD)
        alpha, beta = unique("Alpha"), unique("Beta")
        alpha_admin = f"a-{uuid.uuid4().hex[:6]}@alpha.test"
        beta_admin = f"b-{uuid.uuid4().hex[:6]}@beta.test"
        async with (
            api(web1.base, root) as client1,
            api(web2.base, root) as client2,
            listening(web1.base, root) as root_on_web1,
            listening(web2.base, root) as root_on_web2,
        ):
            # Scenario A through web process 1; the worker process provisions it
            reply = await client1.post(
                "/api/tenants", json={"name": alpha, "admin_email": alpha_admin}
            )
            assert reply.status_code == 202, reply.text
            alpha_id, alpha_job = reply.json()["id"], reply.json()["job_id"]
            ready = ["Success", f"Tenant {alpha} is ready."]
            for hub in (root_on_web1, root_on_web2):
                await eventually(lambda h=hub: ready in h.of("ReceiveNotification"), 20, "A")
            job = await eventually(
                lambda: (j := stack.job(alpha_job)).state is State.SUCCEEDED and j, 10, "job A"
            )
            assert job.finished_at is not None
            finished = job.finished_at.timestamp()
            for hub in (root_on_web1, root_on_web2):  # AC3: within 5 s of the job's end
                assert hub.arrival("ReceiveNotification", ready) - finished < 5.0
                assert hub.of("ReceiveNotification") == [ready]
                assert hub.statuses(alpha_id)[-1] == "Active"

            # tenant A's admin sets a password from the welcome e-mail and connects (web 2)
            await eventually(lambda: mailbox.to(alpha_admin), 10, "the welcome e-mail")
            token = set_password_token(mailbox.to(alpha_admin)[0])
            async with api(web2.base) as anonymous:
                done = await anonymous.post(
                    "/api/auth/set-password", json={"token": token, "password": "alpha-Pw-2026!"}
                )
                assert done.status_code == 204, done.text
            alpha_token = await login(web2.base, alpha_admin, "alpha-Pw-2026!")
            async with listening(web2.base, alpha_token) as alpha_hub:
                # tenant B (through web 2), and tenant A provisioned again as after a
                # failure, so A's admin has events of their own tenant to receive
                reply = await client2.post(
                    "/api/tenants", json={"name": beta, "admin_email": beta_admin}
                )
                assert reply.status_code == 202, reply.text
                beta_id = reply.json()["id"]
                with stack.catalog.begin() as conn:
                    conn.execute(
                        update(tenants).where(tenants.c.id == alpha_id)
                        .values(status="Failed", last_error="simulated")
                    )  # fmt: skip
                assert (await client2.post(f"/api/tenants/{alpha_id}/retry")).status_code == 202
                await wait_status(client1, beta_id, "Active", timeout=20)
                await eventually(
                    lambda: alpha_hub.statuses(alpha_id)[-1:] == ["Active"], 20, "A again"
                )
                beta_ready = ["Success", f"Tenant {beta} is ready."]
                for hub in (root_on_web1, root_on_web2):
                    await eventually(
                        lambda h=hub: beta_ready in h.of("ReceiveNotification"), 10, "B"
                    )
                    await eventually(
                        lambda h=hub: h.statuses(beta_id)[-1:] == ["Active"], 10, "B events"
                    )
                    await eventually(
                        lambda h=hub: h.statuses(alpha_id)[-1:] == ["Active"], 10, "A events"
                    )
                await eventually(
                    lambda: stack.job(reply.json()["job_id"]).state is State.SUCCEEDED, 10, "B"
                )
                await eventually(
                    lambda: stack.job(alpha_job).state is State.SUCCEEDED, 10, "A rerun"
                )

            # A's admin: A's own transitions, nothing of B, no SuperAdmin notifications
            assert alpha_hub.statuses(alpha_id) == ["Provisioning", "Active"]
            seen: list[Any] = [args for _, _, args in alpha_hub.received]
            assert beta_id not in json.dumps(seen) and beta not in json.dumps(seen)
            assert alpha_hub.of("ReceiveNotification") == []
            for hub in (root_on_web1, root_on_web2):
                assert hub.statuses(beta_id) == ["Provisioning", "Active"]
                assert hub.of("ReceiveNotification") == [ready, beta_ready]  # no duplicate
        assert len(mailbox.to(alpha_admin)) == 1 and len(mailbox.to(beta_admin)) == 1
        assert stack.users_with(alpha_admin) == 1

        # the sign-up rate limit (5 an hour per client) is one limit across web processes
        if time.time() % 3600 > 3590:  # a fixed hourly window: do not straddle its end
            await asyncio.sleep(3600 - time.time() % 3600 + 0.5)
        codes = []
        for web in (web1, web2, web1, web2, web1, web2):
            async with api(web.base) as anonymous:
                reply = await anonymous.post(
                    "/api/signup", json={"organization": "Visitor Org", "email": alpha_admin}
                )  # a taken address on purpose: counted, answered alike, nothing created
                codes.append(reply.status_code)
        assert codes == [202, 202, 202, 202, 202, 429], codes
        # the address's owner hears of it once (one notice an hour per address), no tenant
        await eventually(lambda: len(mailbox.to(alpha_admin)) == 2, 10, "the sign-up notice")
        await asyncio.sleep(0.5)
        assert len(mailbox.to(alpha_admin)) == 2
        assert stack.scalar(select(func.count()).select_from(tenants)) == 2
    except BaseException:
        print(stack.logs())
        raise
