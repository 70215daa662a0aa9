"""What people ask the application to do: create a tenant, sign up, retry provisioning."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..domain import (
    ConflictError,
    ProvisioningStatus,
    Tenant,
    TenantNotFoundError,
    check_all,
    validate_email,
    validate_tenant_name,
)
from .ports import (
    JOB_STATES_RUNNING,
    BackgroundJobService,
    DatabaseMigrator,
    TenantRepository,
    TransactionManager,
)
from .provision import ProvisionTenantJob


@dataclass(frozen=True)
class Started:
    """A tenant stored as Pending and the id of the job provisioning it."""

    tenant: Tenant
    job_id: str


class TenantService:
    """Tenant use cases over the application's ports."""

    def __init__(
        self,
        transactions: TransactionManager,
        tenants: TenantRepository,
        jobs: BackgroundJobService,
        databases: DatabaseMigrator,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.transactions = transactions
        self.tenants = tenants
        self.jobs = jobs
        self.databases = databases
        self.clock = clock

    async def create(
        self, name: object, admin_email: object, initiator_user_id: str | None,
        *, name_field: str = "name", email_field: str = "admin_email",
    ) -> Started:  # fmt: skip
        """Store a Pending tenant and enqueue its provisioning, in one transaction."""
        named, email = check_all(
            lambda: validate_tenant_name(name, name_field),
            lambda: validate_email(admin_email, email_field),
        )
        assert isinstance(named, tuple) and isinstance(email, str)
        clean, slug = named
        tenant = Tenant.new(clean, slug, email, initiator_user_id, self.clock())
        async with self.transactions.begin() as tx:
            # the job first, so the tenant row is written once, with its job id; a name
            # taken already rolls the job back with the row
            job_id = await self.jobs.enqueue(
                ProvisionTenantJob.execute, tenant.id, tenant.initiator_user_id,
                tags=(f"tenant:{tenant.slug}",), tx=tx,
            )  # fmt: skip
            tenant = replace(tenant, job_id=job_id)
            await self.tenants.add(tenant, tx)
        return Started(tenant, job_id)

    async def _enqueue(self, tenant: Tenant, tx: object) -> str:
        job_id = await self.jobs.enqueue(
            ProvisionTenantJob.execute, tenant.id, tenant.initiator_user_id,
            tags=(f"tenant:{tenant.slug}",), tx=tx,
        )  # fmt: skip
        await self.tenants.set_job(tenant.id, job_id, tx)
        return job_id

    async def _job_state(self, tenant: Tenant) -> str | None:
        status = await self.jobs.status(tenant.job_id) if tenant.job_id else None
        return None if status is None else status.state

    async def retry(self, tenant_id: str) -> Tenant:
        """Provision a tenant that is not Active again, unless its job is queued or running.

        A retry that is Scheduled is brought forward, a Deleted or Failed job is requeued,
        and a job that no longer exists is replaced by a new one.
        """
        tenant = await self._get(tenant_id)
        if tenant.status is ProvisioningStatus.ACTIVE:
            raise ConflictError(f"tenant {tenant.name!r} is Active already")
        state = await self._job_state(tenant)
        if state in JOB_STATES_RUNNING:
            raise ConflictError(f"tenant {tenant.name!r}: its provisioning job is {state}")
        if state is None:
            async with self.transactions.begin() as tx:
                await self._enqueue(tenant, tx)
            return await self._get(tenant_id)
        assert tenant.job_id is not None
        await self.jobs.requeue(tenant.job_id)
        return tenant

    async def delete(self, tenant_id: str) -> bool:
        """Remove a tenant whose job is not queued or running; whether a database was dropped.

        Its job is deleted first (so nothing provisions it again), then its database if it
        carries our marker, then its rows: a crash part-way leaves a tenant that a second
        delete removes.
        """
        tenant = await self._get(tenant_id)
        state = await self._job_state(tenant)
        if state in JOB_STATES_RUNNING:
            raise ConflictError(f"tenant {tenant.name!r}: its provisioning job is {state}")
        if tenant.job_id is not None and state not in (None, "Deleted"):
            await self.jobs.delete(tenant.job_id)
        dropped = await self.databases.drop_database(tenant.slug, tenant.id)
        await self.tenants.delete(tenant.id)
        return dropped

    async def _get(self, tenant_id: str) -> Tenant:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise TenantNotFoundError(f"tenant {tenant_id} does not exist")
        return tenant
