"""Outages of the services Diquis depends on: PostgreSQL restarted, Redis restarted, SMTP down.

The processes are never restarted by the test: they must reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import pytest

from diquis.jobs import State
from tests.support.wait import eventually
from tests.tenancy.proc_stack import ROOT_EMAIL, ROOT_PASSWORD, api, listening, login

from .conftest import SIZES, ChaosStack, Report, Smtp, StackFactory, budget
from .servers import PrivatePostgres, PrivateRedis
from .tenants import (
    Created,
    create_tenants,
    new_tenant_body,
    runs_of,
    tenant_rows,
    verify_provisioned,
    wait_converged,
)

UNAVAILABLE = {"detail": "database unavailable"}


def _successes(messages: list[list[object]], created: list[Created]) -> list[Created]:
    pushed = Counter(tuple(m) for m in messages)
    return [c for c in created if pushed[("Success", f"Tenant {c.name} is ready.")]]


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.mark.timeout(budget(150, 300))
async def test_postgres_restart_mid_provisioning_503_while_down_then_all_converge(
    stacks: StackFactory,
    pg: PrivatePostgres,
    smtp: Smtp,
    tenant_tables: set[str],
    report: Report,
) -> None:
    stack = stacks(DIQUIS_DEMO_STEP_DELAY="0.3", DIQUIS_RETRY_DELAY_SCALE="0.1")
    web = stack.serve("web")
    workers = [stack.worker("worker1"), stack.worker("worker2")]
    try:
        stack.ready(web, *workers)
        token = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        report.did("serve --no-worker + 2 workers, PostgreSQL catalog and LISTEN/NOTIFY backplane")
        async with listening(web.base, token) as hub, api(web.base, token) as client:
            client.timeout = httpx.Timeout(15)
            before = await create_tenants(web.base, token, max(5, SIZES.tenants // 4), "Before")
            await eventually(
                lambda: Counter(s for s, _ in tenant_rows(stack, [c.id for c in before]).values())
                .get("Provisioning"), 15, "a tenant to be Provisioning",
            )  # fmt: skip
            pg.stop("immediate")
            down_at = time.monotonic()
            report.did(
                f"{len(before)} tenants created; PostgreSQL stopped (-m immediate) mid-provisioning"
            )

            probes: Counter[str] = Counter()
            while time.monotonic() - down_at < SIZES.postgres_outage:
                for method, path, body in (
                    ("GET", "/api/tenants", None),
                    ("GET", f"/api/tenants/{before[0].id}", None),
                    ("POST", "/api/tenants", new_tenant_body("Down")),
                    ("GET", "/api/notifications", None),
                ):
                    began = time.monotonic()
                    try:
                        reply = await client.request(method, path, json=body)
                    except httpx.TimeoutException:
                        raise AssertionError(f"{method} {path} hung: PostgreSQL down") from None
                    took = time.monotonic() - began
                    assert reply.status_code == 503, (method, path, reply.status_code, reply.text)
                    assert reply.json() == UNAVAILABLE, reply.text
                    assert reply.headers.get("retry-after") == "5", reply.headers
                    assert took < 10, (method, path, took)
                    probes[f"{method} {path.split('/')[2]}"] += 1
                await asyncio.sleep(0.25)
            report.checked(
                f"503 {UNAVAILABLE} + Retry-After: 5 while down ({dict(probes)})",
                sum(probes.values()),
            )

            pg.start()
            up_at = time.monotonic()
            _drop_test_connections(stack)
            report.did(f"PostgreSQL started again after {up_at - down_at:.1f}s")
            recovering: Counter[int] = Counter()
            while True:
                body = new_tenant_body("Probe")
                reply = await client.post("/api/tenants", json=body)
                recovering[reply.status_code] += 1
                if reply.status_code == 202:
                    data = reply.json()
                    probe = Created(
                        data["id"], str(data["job_id"]), body["name"], body["admin_email"]
                    )
                    break
                assert reply.status_code == 503, (reply.status_code, reply.text)
                assert time.monotonic() - up_at < 30, "the web process did not reconnect"
                await asyncio.sleep(0.2)
            report.saw(
                f"the web process served again {time.monotonic() - up_at:.1f}s after the "
                f"restart (replies meanwhile: {dict(recovering)})"
            )
            after = await create_tenants(web.base, token, max(5, SIZES.tenants // 4), "After")
            created = [*before, probe, *after]
            await wait_converged(stack, created, timeout=budget(90, 180))
            report.saw(f"all {len(created)} tenants Active {time.monotonic() - up_at:.1f}s after")
            assert all(p.popen.poll() is None for p in [web, *workers])
            report.checked("no process died or was restarted", 3)
            # the hub's LISTEN connections reconnected: pushes for tenants made afterwards
            await eventually(
                lambda: len(_successes(hub.of("ReceiveNotification"), after)) == len(after),
                15, "the Success pushes of the tenants created after the restart",
            )  # fmt: skip
            report.checked("Success pushed for each tenant created after the restart", len(after))
            verify_provisioned(
                stack, created, smtp.box, tenant_tables, report,
                may_repeat=lambda c: runs_of(stack, c.job_id) > 1,
            )  # fmt: skip
    except BaseException:
        print(stack.logs()[-20000:])
        raise


def _drop_test_connections(stack: ChaosStack) -> None:
    """The test's own pooled connections died with the server (the processes must cope)."""
    stack.catalog.dispose()
    if stack._jobs is not None:
        stack._jobs.close()
        stack._jobs = None


# -- Redis backplane ----------------------------------------------------------------------


@pytest.mark.timeout(budget(120, 240))
async def test_redis_restart_buffers_notifications_and_delivers_them(
    stacks: StackFactory, redis: PrivateRedis, smtp: Smtp, report: Report
) -> None:
    backplane = f"{redis.url()}?channel=chaos-{uuid.uuid4().hex[:8]}"
    stack = stacks(backplane, DIQUIS_RETRY_DELAY_SCALE="0.1")
    web = stack.serve("web")
    worker = stack.worker("worker1")
    try:
        stack.ready(web, worker)
        token = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        report.did("serve --no-worker + 1 worker, Redis backplane (private redis-server)")
        async with listening(web.base, token) as hub, api(web.base, token) as client:
            first = await create_tenants(web.base, token, 1, "First")
            await eventually(
                lambda: _successes(hub.of("ReceiveNotification"), first), 20, "the first push"
            )
            report.checked("a push through Redis before the restart", 1)

            redis.stop()
            down_at = time.monotonic()
            during = await create_tenants(web.base, token, max(5, SIZES.tenants // 4), "During")
            await wait_converged(stack, during, timeout=60)
            report.did(
                f"redis-server killed; {len(during)} tenants created and provisioned while it "
                f"was down ({time.monotonic() - down_at:.1f}s)"
            )
            redis.start()
            up_at = time.monotonic()
            report.did(f"redis-server started again after {up_at - down_at:.1f}s")
            after = await create_tenants(web.base, token, 3, "After")
            await eventually(
                lambda: len(_successes(hub.of("ReceiveNotification"), after)) == len(after),
                30, "the pushes published after Redis came back",
            )  # fmt: skip
            report.checked("the connected client got the pushes sent after the restart", len(after))
            await eventually(
                lambda: len(_successes(hub.of("ReceiveNotification"), during)) == len(during),
                30, "the pushes the worker buffered while Redis was down",
            )  # fmt: skip
            report.saw(f"buffered pushes delivered {time.monotonic() - up_at:.1f}s after restart")
            report.checked("every push published while Redis was down delivered", len(during))
            pushed = Counter(tuple(m) for m in hub.of("ReceiveNotification"))
            assert all(n == 1 for n in pushed.values()), pushed
            report.checked("no push delivered twice", len(pushed))

            inbox = (await client.get("/api/notifications")).json()
            texts = {item["message"] for item in inbox["items"]}
            for c in first + during + after:
                assert f"Tenant {c.name} is ready." in texts, (c.name, texts)
            report.checked("every Success is in the inbox", len(first + during + after))
            assert web.popen.poll() is None and worker.popen.poll() is None
    except BaseException:
        print(stack.logs()[-20000:])
        raise


# -- SMTP ---------------------------------------------------------------------------------


@pytest.mark.timeout(budget(120, 240))
async def test_smtp_down_the_welcome_email_is_sent_once_by_the_retries(
    stacks: StackFactory, smtp: Smtp, tenant_tables: set[str], report: Report
) -> None:
    scale = "0.1"
    stack = stacks(DIQUIS_RETRY_DELAY_SCALE=scale)
    web = stack.serve("web")
    worker = stack.worker("worker1")
    try:
        stack.ready(web, worker)
        token = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        smtp.stop()
        down_at = time.monotonic()
        count = max(3, SIZES.tenants // 10)
        created = await create_tenants(web.base, token, count, "Mailless")
        report.did(
            f"SMTP server stopped; {count} tenants created (retry delays x {scale}, "
            "DIQUIS_RETRY_DELAY_SCALE)"
        )
        await eventually(
            lambda: all(
                stack.job(c.job_id).state is State.SCHEDULED
                and tenant_rows(stack, [c.id])[c.id][0] == "Active"
                for c in created
            ),
            30, "every tenant Active with its job waiting to retry the e-mail",
        )  # fmt: skip
        report.checked("Active with the e-mail step failing and its retry scheduled", count)
        await asyncio.sleep(max(0.0, down_at + SIZES.smtp_outage - time.monotonic()))
        assert smtp.box.messages == []
        smtp.start()
        up_at = time.monotonic()
        report.did(f"SMTP server back after {up_at - down_at:.1f}s (same port)")
        await wait_converged(stack, created, timeout=budget(60, 150))
        report.saw(f"every job Succeeded {time.monotonic() - up_at:.1f}s after SMTP came back")
        attempts = [runs_of(stack, c.job_id) for c in created]
        assert all(n >= 2 for n in attempts), attempts
        report.checked(f"the e-mail was sent by a retry (runs per job: {attempts})", count)
        await asyncio.sleep(1)  # a second send would have arrived by now
        verify_provisioned(stack, created, smtp.box, tenant_tables, report)
    except BaseException:
        print(stack.logs()[-20000:])
        raise
