"""Creating many tenants through the API and checking, from the databases, that each converged."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from diquis.jobs import State
from diquis.tenancy.infrastructure.db import notifications, tenants, users
from tests.tenancy.proc_stack import ROOT_EMAIL, Mailbox, Stack, api, slug_of

from .conftest import Report, table_names


@dataclass(frozen=True)
class Created:
    """A tenant the API accepted (202)."""

    id: str
    job_id: str
    name: str
    admin: str

    @property
    def slug(self) -> str:
        return slug_of(self.name)


def new_tenant_body(prefix: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"name": f"{prefix} {tag}", "admin_email": f"admin-{tag}@{prefix.lower()}.test"}


async def create_tenants(
    base: str, token: str, count: int, prefix: str, *, parallel: int = 20, spread: float = 0
) -> list[Created]:
    """POST /api/tenants ``count`` times, ``parallel`` at once (or evenly over ``spread`` s)."""
    gate = asyncio.Semaphore(parallel)
    began = time.monotonic()

    async def one(index: int) -> Created:
        if spread:
            await asyncio.sleep(max(0.0, began + spread * index / count - time.monotonic()))
        body = new_tenant_body(prefix)
        async with gate:
            reply = await client.post("/api/tenants", json=body)
        assert reply.status_code == 202, (reply.status_code, reply.text)
        data = reply.json()
        return Created(data["id"], str(data["job_id"]), body["name"], body["admin_email"])

    async with api(base, token) as client:
        client.timeout = 30  # type: ignore[assignment]
        return list(await asyncio.gather(*(one(i) for i in range(count))))


def tenant_rows(stack: Stack, ids: Collection[str]) -> dict[str, tuple[str, str | None]]:
    """id -> (status, last_error) from the catalog."""
    with stack.catalog.connect() as conn:
        rows = conn.execute(
            select(tenants.c.id, tenants.c.status, tenants.c.last_error).where(
                tenants.c.id.in_(list(ids))
            )
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


async def wait_converged(
    stack: Stack,
    created: list[Created],
    timeout: float,
    status: str = "Active",
    *,
    never: str | None = None,
) -> None:
    """Until every tenant has ``status`` and every provisioning job has Succeeded.

    With ``never``, a tenant seen in that status fails the wait at once.
    """
    ids = [c.id for c in created]
    deadline = time.monotonic() + timeout
    while True:
        rows = tenant_rows(stack, ids)
        statuses = Counter(s for s, _ in rows.values())
        if never is not None and statuses.get(never):
            bad = {tenant_id: e for tenant_id, (s, e) in rows.items() if s == never}
            raise AssertionError(f"{statuses[never]} tenant(s) went {never}: {bad}")
        jobs = Counter(stack.job(c.job_id).state for c in created) if (
            statuses.get(status) == len(ids)
        ) else Counter()  # fmt: skip
        if jobs.get(State.SUCCEEDED) == len(ids):
            return
        if time.monotonic() > deadline:
            errors = Counter(e for s, e in rows.values() if s != status)
            raise AssertionError(
                f"after {timeout}s: tenants {dict(statuses)}, jobs {dict(jobs)}, "
                f"errors of the others {dict(errors)}"
            )
        await asyncio.sleep(0.25)


def killed_runs(stack: Stack, job_id: str, killed_pids: Collection[int]) -> int:
    """How many runs of the job were on a worker that was then killed."""
    history = stack.job(job_id).history
    return sum(
        1
        for h in history
        if h.state is State.PROCESSING
        and h.server_id is not None
        and int(str(h.server_id).split(":")[1]) in killed_pids
    )


def verify_provisioned(
    stack: Stack,
    created: list[Created],
    mailbox: Mailbox,
    tables: set[str],
    report: Report,
    *,
    may_repeat: Callable[[Created], bool] | None = None,
    hub_messages: Iterable[list[object]] | None = None,
) -> None:
    """Active, one database with every tenant table, one admin, one e-mail, one Success each.

    With ``may_repeat``, a second welcome e-mail is allowed for a tenant it accepts (a job
    that was running when its worker or the database died: SMTP has no idempotency, so a
    crash between the send and its record sends again).
    """
    n = len(created)
    rows = tenant_rows(stack, [c.id for c in created])
    assert Counter(s for s, _ in rows.values()) == {"Active": n}, rows
    report.checked("tenants Active", n)

    for c in created:
        databases = stack.tenant_databases(c.slug)
        assert databases == [f"diquis_tenant_{c.slug.replace('-', '_')}"], (c.name, databases)
        missing = tables - table_names(stack.tenant_url(c.slug))
        assert not missing, f"{c.name}: tenant database lacks {sorted(missing)}"
        assert stack.tenant_seed(c.slug) == (c.name, 1), c.name
    report.checked(f"one tenant database with all {len(tables)} tables, seeded once", n)

    with stack.catalog.connect() as conn:
        admins = dict(
            conn.execute(
                select(users.c.email, func.count())
                .where(users.c.email.in_([c.admin for c in created]))
                .group_by(users.c.email)
            ).all()
        )
    assert all(admins.get(c.admin) == 1 for c in created), admins
    report.checked("one tenant admin account", n)

    doubled = []
    for c in created:
        got = len(mailbox.to(c.admin))
        if got != 1:
            doubled.append(c.name)
            assert got == 2 and may_repeat is not None and may_repeat(c), (c.name, got)
    report.checked("one welcome e-mail (a second only after a crash mid-send)", n)
    if may_repeat is not None:
        report.saw(f"{len(doubled)} welcome e-mail(s) sent twice after a crash: {doubled}")

    root_id = stack.user_id(ROOT_EMAIL)
    with stack.catalog.connect() as conn:
        stored = Counter(
            (r[0], r[1])
            for r in conn.execute(
                select(notifications.c.kind, notifications.c.message).where(
                    notifications.c.user_id == root_id
                )
            )
        )
    for c in created:
        assert stored[("Success", f"Tenant {c.name} is ready.")] == 1, (c.name, stored)
    report.checked("one stored Success notification", n)
    if hub_messages is not None:
        pushed = Counter(tuple(m) for m in hub_messages)
        for c in created:
            assert pushed[("Success", f"Tenant {c.name} is ready.")] == 1, (c.name, pushed)
        report.checked("one Success pushed over the hub", n)


async def wait_tenant(stack: Stack, created: Created, status: str, timeout: float) -> str | None:
    """Until the tenant has ``status``; its last_error then."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        now, error = tenant_rows(stack, [created.id])[created.id]
        if not seen or seen[-1] != now:
            seen.append(now)
        if now == status:
            return error
        if time.monotonic() > deadline:
            raise AssertionError(f"{created.name} went {seen}, never {status} in {timeout}s")
        await asyncio.sleep(0.1)


def runs_of(stack: Stack, job_id: str) -> int:
    """How many times the job was started (Processing entries in its history)."""
    return sum(1 for h in stack.job(job_id).history if h.state is State.PROCESSING)
