"""Load: many concurrent super-admin clients creating tenants against ``serve --no-worker``.

No 5xx, no time-out, every tenant stored once (with its job); latency percentiles printed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from diquis.tenancy.infrastructure.db import tenants
from tests.tenancy.proc_stack import ROOT_EMAIL, ROOT_PASSWORD, login

from .conftest import SIZES, Report, StackFactory, budget
from .tenants import new_tenant_body


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank percentile ``p`` (0-100) of an ascending list."""
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


@pytest.mark.timeout(budget(120, 600))
async def test_concurrent_clients_create_tenants_without_5xx_or_timeouts(
    stacks: StackFactory, report: Report
) -> None:
    stack = stacks()
    web = stack.serve("web")
    try:
        stack.ready(web)
        token = await login(web.base, ROOT_EMAIL, ROOT_PASSWORD)
        clients, creates = SIZES.load_clients, SIZES.load_creates
        latencies: list[float] = []
        statuses: Counter[int | str] = Counter()
        names: list[str] = []
        broken = asyncio.Event()  # the first 5xx or time-out ends the run: no use going on

        async def client_loop(index: int) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=web.base, headers=headers, timeout=20) as c:
                for _ in range(index, creates, clients):  # creates spread over the clients
                    if broken.is_set():
                        return
                    body = new_tenant_body("Load")
                    began = time.perf_counter()
                    try:
                        reply = await c.post("/api/tenants", json=body)
                    except httpx.TimeoutException:
                        statuses["timeout"] += 1
                        broken.set()
                        continue
                    latencies.append(time.perf_counter() - began)
                    statuses[reply.status_code] += 1
                    if reply.status_code >= 500:
                        broken.set()
                    if reply.status_code == 202:
                        names.append(body["name"])

        began = time.monotonic()
        await asyncio.gather(*(client_loop(i) for i in range(clients)))
        took = time.monotonic() - began
        report.did(f"{clients} concurrent clients x {creates} POST /api/tenants in {took:.1f}s "
                   f"({creates / took:.0f}/s) against 1 serve --no-worker")  # fmt: skip
        ordered = sorted(latencies) or [float("nan")]
        report.saw(
            "latency ms: "
            + ", ".join(f"p{p:g} {percentile(ordered, p) * 1000:.0f}" for p in (50, 90, 95, 99))
            + f", max {ordered[-1] * 1000:.0f}"
        )
        report.saw(f"replies: {dict(statuses)}")
        assert statuses == {202: creates}, dict(statuses)
        report.checked("202, no 5xx, no time-out", creates)

        with stack.catalog.connect() as conn:
            stored = Counter(
                r[0]
                for r in conn.execute(select(tenants.c.name).where(tenants.c.name.like("Load %")))
            )
            total = conn.execute(select(func.count()).select_from(tenants)).scalar()
        assert total == creates and set(stored) == set(names), (total, creates)
        assert all(n == 1 for n in stored.values())
        report.checked("every tenant stored once", creates)
        jobs = sum(stack.jobs.monitoring.state_counts().values())
        assert jobs == creates, (jobs, creates)
        report.checked("one provisioning job per tenant", creates)
    except BaseException:
        print(stack.logs())
        raise
