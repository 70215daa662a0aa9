"""Chaos for tenant provisioning: many at once, workers killed -9 all along, jobs cancelled.

``serve --no-worker`` + 2 ``diquis worker --concurrency 20`` on a private PostgreSQL (its
LISTEN/NOTIFY as the backplane); every tenant must converge to exactly one of everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter

import httpx
import pytest

from diquis.jobs import State
from tests.support.wait import eventually
from tests.tenancy.proc_stack import (
    ROOT_EMAIL,
    ROOT_PASSWORD,
    api,
    listening,
    login,
)

from .conftest import FULL, SIZES, ChaosStack, Report, Smtp, StackFactory, budget
from .tenants import (
    Created,
    create_tenants,
    killed_runs,
    runs_of,
    tenant_rows,
    verify_provisioned,
    wait_converged,
    wait_tenant,
)


@pytest.mark.timeout(budget(120, 400))
async def test_many_tenants_at_once_all_become_active(
    stacks: StackFactory, smtp: Smtp, tenant_tables: set[str], report: Report
) -> None:
    stack = stacks()
    web = stack.serve("web")
    workers = [stack.worker("worker1"), stack.worker("worker2")]
    try:
        stack.ready(web, *workers)
        report.did("serve --no-worker + 2 x worker --concurrency 20, private PostgreSQL")
        token = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        async with listening(web.base, token) as hub:
            began = time.monotonic()
            created = await create_tenants(web.base, token, SIZES.tenants, "Rush", parallel=50)
            report.did(f"POST /api/tenants x {len(created)} at once (all 202)")
            await wait_converged(stack, created, timeout=budget(90, 300), never="Failed")
            report.saw(
                f"all {len(created)} Active, jobs Succeeded in {time.monotonic() - began:.1f}s"
            )
            await eventually(
                lambda: len(hub.of("ReceiveNotification")) >= len(created), 15, "every push"
            )
            await asyncio.sleep(0.5)  # a duplicate push would arrive by now
            verify_provisioned(
                stack, created, smtp.box, tenant_tables, report,
                hub_messages=hub.of("ReceiveNotification"),
            )  # fmt: skip
    except BaseException:
        print(stack.logs())
        raise


async def _kill_workers(
    stack: ChaosStack, workers: list, seconds: float, report: Report
) -> list[int]:
    """kill -9 a random worker every 2 s for ``seconds`` (a new one starts each time)."""
    killed: list[int] = []
    rng = random.Random()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(2)
        victim = rng.choice(workers)
        victim.kill9()
        killed.append(victim.pid)
        workers[workers.index(victim)] = stack.worker(f"worker{len(killed) + 2}")
    report.did(f"kill -9 of a random worker every 2 s for {seconds:g}s: {len(killed)} kills")
    return killed


@pytest.mark.timeout(budget(150, 400))
async def test_workers_killed_every_2s_all_tenants_converge(
    stacks: StackFactory, smtp: Smtp, tenant_tables: set[str], report: Report
) -> None:
    stack = stacks(DIQUIS_DEMO_STEP_DELAY="0.4", DIQUIS_RETRY_DELAY_SCALE="0.1")
    web = stack.serve("web")
    workers = [stack.worker("worker1"), stack.worker("worker2")]
    try:
        stack.ready(web, *workers)
        token = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        report.did("serve --no-worker + 2 x worker --concurrency 20; step delay 0.4 s")
        # tenants arrive all through the kill window, so kills land on running jobs
        creating = asyncio.create_task(
            create_tenants(web.base, token, SIZES.tenants, "Kill", spread=SIZES.kill_seconds * 0.8)
        )
        killed = await _kill_workers(stack, workers, SIZES.kill_seconds, report)
        created = await creating
        report.did(f"{len(created)} tenants created during the kills; then calm")
        began = time.monotonic()
        await wait_converged(stack, created, timeout=budget(90, 240))
        report.saw(f"all converged {time.monotonic() - began:.1f}s after the last kill")
        reran = [c for c in created if runs_of(stack, c.job_id) > 1]
        report.saw(f"{len(reran)} provisioning job(s) ran more than once")
        verify_provisioned(
            stack, created, smtp.box, tenant_tables, report,
            may_repeat=lambda c: killed_runs(stack, c.job_id, killed) >= 1,
        )  # fmt: skip
        # a rerun follows a kill, or a failed attempt (reported: the retry's reason)
        retries = Counter(
            (h.reason or "")[:120]
            for c in reran
            for h in stack.job(c.job_id).history
            if h.state is State.SCHEDULED and "Retry attempt" in (h.reason or "")
        )
        after_kill = sum(1 for c in reran if _ran_on_killed(stack, c.job_id, killed))
        report.saw(f"{after_kill} rerun(s) after a kill; retries after an error: {dict(retries)}")
    except BaseException:
        print(stack.logs()[-20000:])
        raise


async def _dashboard(base: str) -> httpx.AsyncClient:
    """A browser-like client: a super admin's session cookie and the dashboard's CSRF cookie."""
    client = httpx.AsyncClient(base_url=base, timeout=15)
    reply = await client.post(
        "/api/auth/login", json={"email": ROOT_EMAIL, "password": ROOT_PASSWORD}
    )
    assert reply.status_code == 200, reply.text
    page = await client.get("/hangfire/")
    assert page.status_code == 200 and "diquis_csrf" in client.cookies, page.status_code
    return client


def _ran_on_killed(stack: ChaosStack, job_id: str, killed: list[int]) -> bool:
    runs = [h for h in stack.job(job_id).history if h.state is State.PROCESSING]
    return all(int(str(h.server_id).split(":")[1]) in killed for h in runs[:-1])


@pytest.mark.timeout(budget(120, 240))
async def test_deleting_a_running_provisioning_job_fails_the_tenant_and_retry_recovers(
    stacks: StackFactory, smtp: Smtp, tenant_tables: set[str], report: Report
) -> None:
    stack = stacks(DIQUIS_DEMO_STEP_DELAY="1.0")  # five steps: a job runs for ~5 s
    web = stack.serve("web")
    worker = stack.worker("worker1", concurrency=5)
    try:
        stack.ready(web, worker)
        token = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        root_id = stack.user_id(ROOT_EMAIL)
        async with listening(web.base, token) as hub, api(web.base, token) as client:
            created = await create_tenants(web.base, token, SIZES.cancellations, "Cancel")
            report.did(
                f"{len(created)} tenants created; each job deleted while Processing by the "
                "dashboard (POST /hangfire/actions/delete)"
                + (", every other one by JobEngine.delete in another process" if FULL else "")
            )
            dashboard = await _dashboard(web.base)

            async def cancel(index: int, c: Created) -> None:
                await eventually(
                    lambda: stack.job(c.job_id).state is State.PROCESSING, 20, "Processing"
                )
                # cancel in different steps (1 s before each): 0.3 s, 1.2 s, 2.1 s into the
                # run, before the tenant is Active (after the third step)
                await asyncio.sleep(0.3 + 0.9 * (index % 3))
                assert tenant_rows(stack, [c.id])[c.id][0] == "Provisioning", "too late to cancel"
                if not FULL or index % 2 == 0:  # the dashboard's delete, in the web process
                    reply = await dashboard.post(
                        "/hangfire/actions/delete",
                        data={"id": c.job_id, "csrf_token": dashboard.cookies["diquis_csrf"]},
                        headers={"Accept": "application/json"},
                    )
                    assert reply.status_code == 200 and reply.json()["done"] == 1, reply.text
                else:  # JobEngine.delete from another process (this one): see below
                    await asyncio.to_thread(stack.jobs.delete, int(c.job_id), "Deleted by a script")

            await asyncio.gather(*(cancel(i, c) for i, c in enumerate(created)))
            await dashboard.aclose()
            for index, c in enumerate(created):
                # a delete made outside the app's processes is seen by the reconciler, which
                # runs every minute; the dashboard's delete repairs the tenant at once
                foreign = FULL and index % 2 == 1
                error = await wait_tenant(stack, c, "Failed", 75 if foreign else 20)
                assert error == "Provisioning was cancelled", (c.name, error)
                assert stack.job(c.job_id).state is State.DELETED
            report.checked(
                "deleted job -> tenant Failed, 'Provisioning was cancelled'", len(created)
            )
            errors = await eventually(
                lambda: [m for m in hub.of("ReceiveNotification") if m[0] == "Error"]
                if len([m for m in hub.of("ReceiveNotification") if m[0] == "Error"])
                >= len(created) else None,
                15, "an Error notification per cancelled tenant",
            )  # fmt: skip
            stored = [k for k, _ in stack.notifications_of(root_id) if k == "Error"]
            assert len(errors) == len(stored) == len(created), (errors, stored)
            for c in created:
                assert any(c.name in str(m[1]) for m in errors), (c.name, errors)
            report.checked("an Error notification pushed and stored per tenant", len(created))

            for c in created:
                reply = await client.post(f"/api/tenants/{c.id}/retry")
                assert reply.status_code == 202, reply.text
            report.did("POST /api/tenants/{id}/retry for each (202)")
            await wait_converged(stack, created, timeout=60)
            verify_provisioned(stack, created, smtp.box, tenant_tables, report)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        with contextlib.suppress(Exception):
            worker.stop()
