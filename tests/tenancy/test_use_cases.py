"""TenantService (create, retry, delete) on in-memory fakes of the application's ports."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from diquis.tenancy.application.ports import JobStatus
from diquis.tenancy.application.provision import ProvisionTenantJob
from diquis.tenancy.application.use_cases import TenantService
from diquis.tenancy.domain import (
    ConflictError,
    ProvisioningStatus,
    Tenant,
    TenantNotFoundError,
    ValidationError,
)

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
P = ProvisioningStatus


class _Tx:
    def __init__(self) -> None:
        self.writes: list[Callable[[], None]] = []


class Transactions:
    """Writes made inside a transaction land only if its block ends cleanly."""

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[_Tx]:
        tx = _Tx()
        yield tx
        for write in tx.writes:
            write()


class Tenants:
    def __init__(self) -> None:
        self.rows: dict[str, Tenant] = {}

    async def add(self, tenant: Tenant, tx: Any) -> None:
        tx.writes.append(lambda: self.rows.__setitem__(tenant.id, tenant))

    async def set_job(self, tenant_id: str, job_id: str, tx: Any) -> None:
        def write() -> None:
            self.rows[tenant_id] = dataclasses.replace(self.rows[tenant_id], job_id=job_id)

        tx.writes.append(write)

    async def get(self, tenant_id: str) -> Tenant | None:
        return self.rows.get(tenant_id)

    async def delete(self, tenant_id: str) -> None:
        self.rows.pop(tenant_id, None)


class Jobs:
    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.enqueued: list[tuple[Any, tuple[Any, ...], tuple[str, ...]]] = []
        self.requeued: list[str] = []
        self.deleted: list[str] = []

    async def enqueue(
        self, method: Any, *args: Any, tags: tuple[str, ...] = (), tx: Any = None
    ) -> str:
        job_id = str(len(self.enqueued) + 1)
        self.enqueued.append((method, args, tags))
        tx.writes.append(lambda: self.states.__setitem__(job_id, "Enqueued"))
        return job_id

    async def requeue(self, job_id: str) -> None:
        self.requeued.append(job_id)
        self.states[job_id] = "Enqueued"

    async def status(self, job_id: str) -> JobStatus | None:
        state = self.states.get(job_id)
        return None if state is None else JobStatus(state, 1, None)

    async def delete(self, job_id: str) -> None:
        self.deleted.append(job_id)
        self.states[job_id] = "Deleted"


class Databases:
    def __init__(self) -> None:
        self.dropped: list[tuple[str, str]] = []

    async def drop_database(self, slug: str, tenant_id: str) -> bool:
        self.dropped.append((slug, tenant_id))
        return True


@pytest.fixture
def fakes() -> tuple[TenantService, Tenants, Jobs, Databases]:
    tenants, jobs, databases = Tenants(), Jobs(), Databases()
    service = TenantService(Transactions(), tenants, jobs, databases, clock=lambda: NOW)  # type: ignore[arg-type]
    return service, tenants, jobs, databases


Fakes = tuple[TenantService, Tenants, Jobs, Databases]


async def test_create_stores_a_pending_tenant_and_its_job_together(fakes: Fakes) -> None:
    service, tenants, jobs, _ = fakes
    started = await service.create("  Acme  Corp ", "Admin@Acme.test", "u1")
    stored = tenants.rows[started.tenant.id]
    assert stored.status is P.PENDING and stored.job_id == started.job_id
    assert (stored.name, stored.slug, stored.admin_email) == (
        "Acme Corp",
        "acme-corp",
        "admin@acme.test",
    )
    method, args, tags = jobs.enqueued[0]
    assert method == ProvisionTenantJob.execute
    assert args == (stored.id, "u1") and tags == ("tenant:acme-corp",)


async def test_create_refuses_bad_input_before_writing(fakes: Fakes) -> None:
    service, tenants, jobs, _ = fakes
    with pytest.raises(ValidationError) as caught:
        await service.create("Acme", "not-an-email", None, email_field="email")
    assert caught.value.field == "email"
    assert not tenants.rows and not jobs.enqueued


async def _with_job(fakes: Fakes, tenant_status: ProvisioningStatus, job: str | None) -> Tenant:
    service, tenants, jobs, _ = fakes
    started = await service.create("Acme", "a@acme.test", None)
    tenant = dataclasses.replace(tenants.rows[started.tenant.id], status=tenant_status)
    tenants.rows[tenant.id] = tenant
    if job is None:
        jobs.states.clear()
    else:
        jobs.states[started.job_id] = job
    return tenant


@pytest.mark.parametrize("job", ["Failed", "Deleted", "Scheduled", "Succeeded"])
async def test_retry_requeues_a_job_that_is_not_queued_or_running(fakes: Fakes, job: str) -> None:
    tenant = await _with_job(fakes, P.FAILED, job)
    service, _, jobs, _ = fakes
    await service.retry(tenant.id)
    assert jobs.requeued == [tenant.job_id]


@pytest.mark.parametrize("job", ["Enqueued", "Processing"])
async def test_retry_refuses_while_the_job_is_queued_or_running(fakes: Fakes, job: str) -> None:
    tenant = await _with_job(fakes, P.PROVISIONING, job)
    with pytest.raises(ConflictError, match=job):
        await fakes[0].retry(tenant.id)
    assert not fakes[2].requeued


async def test_retry_replaces_a_job_that_no_longer_exists(fakes: Fakes) -> None:
    tenant = await _with_job(fakes, P.FAILED, None)
    service, tenants, jobs, _ = fakes
    again = await service.retry(tenant.id)
    assert len(jobs.enqueued) == 2 and again.job_id == "2" and tenants.rows[tenant.id].job_id == "2"


async def test_retry_refuses_an_active_tenant_and_an_unknown_one(fakes: Fakes) -> None:
    tenant = await _with_job(fakes, P.ACTIVE, "Succeeded")
    with pytest.raises(ConflictError, match="Active"):
        await fakes[0].retry(tenant.id)
    with pytest.raises(TenantNotFoundError):
        await fakes[0].retry("nope")


async def test_delete_deletes_the_job_then_the_database_then_the_rows(fakes: Fakes) -> None:
    tenant = await _with_job(fakes, P.FAILED, "Failed")
    service, tenants, jobs, databases = fakes
    assert await service.delete(tenant.id) is True
    assert jobs.deleted == [tenant.job_id]
    assert databases.dropped == [("acme", tenant.id)]
    assert tenant.id not in tenants.rows


@pytest.mark.parametrize("job", ["Deleted", None])
async def test_delete_leaves_a_deleted_or_missing_job_alone(fakes: Fakes, job: str | None) -> None:
    tenant = await _with_job(fakes, P.FAILED, job)
    await fakes[0].delete(tenant.id)
    assert fakes[2].deleted == [] and tenant.id not in fakes[1].rows


async def test_delete_refuses_while_the_job_runs(fakes: Fakes) -> None:
    tenant = await _with_job(fakes, P.PROVISIONING, "Processing")
    with pytest.raises(ConflictError):
        await fakes[0].delete(tenant.id)
    assert tenant.id in fakes[1].rows and not fakes[3].dropped
