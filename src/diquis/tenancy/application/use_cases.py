"""What people ask the application to do: create a tenant, sign up, retry provisioning."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from ..domain import (
    ConflictError,
    ProvisioningStatus,
    Tenant,
    TenantNotFoundError,
    validate_email,
    validate_tenant_name,
)
from .ports import BackgroundJobService, TenantRepository, TransactionManager
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
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.transactions = transactions
        self.tenants = tenants
        self.jobs = jobs
        self.clock = clock

    async def create(
        self, name: object, admin_email: object, initiator_user_id: str | None,
        *, name_field: str = "name", email_field: str = "admin_email",
    ) -> Started:  # fmt: skip
        """Store a Pending tenant and enqueue its provisioning, in one transaction."""
        clean, slug = validate_tenant_name(name, name_field)
        email = validate_email(admin_email, email_field)
        tenant = Tenant.new(clean, slug, email, initiator_user_id, self.clock())
        async with self.transactions.begin() as tx:
            await self.tenants.add(tenant, tx)
            job_id = await self.jobs.enqueue(
                ProvisionTenantJob.execute, tenant.id, initiator_user_id,
                tags=(f"tenant:{slug}",), tx=tx,
            )  # fmt: skip
            await self.tenants.set_job(tenant.id, job_id, tx)
        return Started(tenant, job_id)

    async def retry(self, tenant_id: str) -> Tenant:
        """Run a Failed tenant's provisioning job again (ConflictError otherwise)."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise TenantNotFoundError(f"tenant {tenant_id} does not exist")
        if tenant.status is not ProvisioningStatus.FAILED or tenant.job_id is None:
            raise ConflictError(f"tenant {tenant.name!r} is {tenant.status}, not Failed")
        await self.jobs.requeue(tenant.job_id)
        return tenant
