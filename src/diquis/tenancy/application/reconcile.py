"""Every tenant status has a way out: repair tenants whose provisioning job is gone for good.

A provisioning job can end without the job's own code having the last word: deleted from
the dashboard (cancelled mid-run), Failed after its last retry, or expired away. The rules
below say, in one table, what that leaves the tenant as; :class:`Reconciler` applies them
when a job changes state (right away, in the process that changed it) and once a minute
over every tenant that is not Active (the recurring ``tenancy.reconcile`` job), so a
process that died before it could react is repaired too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..domain import ProvisioningStatus, Tenant
from .ports import (
    BackgroundJobService,
    JobStatus,
    Mailer,
    Notifier,
    TenantRepository,
    UserDirectory,
)
from .provision import welcome_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Repair:
    """What to do with a tenant: ``kind`` names it (metric label), ``reason`` is shown."""

    kind: str
    reason: str


#: job states after which the job will never run again by itself
JOB_GONE = frozenset({"Deleted", "Failed"})


def repair_for(tenant: Tenant, job: JobStatus | None) -> Repair | None:
    """The rule table: the repair a tenant needs given its job's state, or None.

    | tenant            | job                      | repair                               |
    |-------------------|--------------------------|--------------------------------------|
    | not Active        | Deleted                  | cancelled: Failed, "was cancelled"   |
    | not Active        | Failed (no retry left)   | gave_up: Failed, "gave up after N…"  |
    | not Active        | missing                  | job_missing: Failed                  |
    | Active            | Deleted / Failed         | welcome_not_sent: Warning (see below)|
    | any               | Scheduled/Enqueued/…     | none: the job will still run         |
    """
    if tenant.status is ProvisioningStatus.ACTIVE:
        if job is not None and job.state in JOB_GONE:
            return Repair("welcome_not_sent", "its welcome e-mail was not sent")
        return None
    if job is None:
        return Repair("job_missing", "Provisioning stopped: its job no longer exists")
    if job.state == "Deleted":
        return Repair("cancelled", "Provisioning was cancelled")
    if job.state == "Failed":
        last = tenant.last_error or job.last_error or "unknown error"
        runs = "run" if job.runs == 1 else "runs"
        return Repair("gave_up", f"gave up after {job.runs} {runs}: {last}"[:200])
    return None


class Reconciler:
    """Applies :func:`repair_for`; every repair is idempotent (compare-and-set, keyed)."""

    def __init__(
        self,
        tenants: TenantRepository,
        jobs: BackgroundJobService,
        notifier: Notifier,
        mailer: Mailer,
        users: UserDirectory,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.tenants = tenants
        self.jobs = jobs
        self.notifier = notifier
        self.mailer = mailer
        self.users = users
        self.clock = clock

    async def run(self) -> dict[str, int]:
        """One round over every tenant that is not Active; repairs made, by kind."""
        made: dict[str, int] = {}
        for tenant in await self.tenants.unsettled():
            kind = await self.reconcile(tenant)
            if kind is not None:
                made[kind] = made.get(kind, 0) + 1
        return made

    async def job_changed(self, job_id: str) -> str | None:
        """React to a provisioning job that was deleted or failed for good."""
        tenant = await self.tenants.by_job(job_id)
        return None if tenant is None else await self.reconcile(tenant)

    async def reconcile(self, tenant: Tenant) -> str | None:
        """Repair one tenant if its rule says so; the kind of repair made, or None."""
        job = await self.jobs.status(tenant.job_id) if tenant.job_id else None
        repair = repair_for(tenant, job)
        if repair is None:
            return None
        if repair.kind == "welcome_not_sent":
            return await self._warn_welcome(tenant, repair)
        failed = await self.tenants.fail_unless_active(tenant.id, repair.reason, self.clock())
        if failed is None:
            return None  # Active meanwhile, or already Failed with this reason
        log.warning("repaired tenant %s (%s): %s", tenant.id, repair.kind, repair.reason)
        await self.tenants.count_repair(repair.kind)
        await self.notifier.tenant_status_changed(failed)
        message = f"Provisioning failed: {failed.name}: {repair.reason}"
        for user_id in await self._audience(failed):
            # notification keys are unique across users: one key per person told
            key = f"tenant:{failed.id}:{repair.kind}:{failed.failures}:{user_id}"
            await self.notifier.notify_user(user_id, "Error", message, key=key)
        return repair.kind

    async def _warn_welcome(self, tenant: Tenant, repair: Repair) -> str | None:
        if await self.mailer.was_sent(welcome_key(tenant.id)):
            return None
        told = False
        for user_id in await self._admins():
            told |= await self.notifier.notify_user(
                user_id, "Warning", f"Tenant {tenant.name} is Active, but {repair.reason}.",
                key=f"tenant:{tenant.id}:{repair.kind}:{user_id}",
            )  # fmt: skip
        if told:
            log.warning("tenant %s is Active but %s", tenant.id, repair.reason)
            await self.tenants.count_repair(repair.kind)
            return repair.kind
        return None

    async def _admins(self) -> list[str]:
        return list(await self.users.superadmins())

    async def _audience(self, tenant: Tenant) -> list[str]:
        ids = await self._admins()
        if tenant.initiator_user_id and tenant.initiator_user_id not in ids:
            ids.insert(0, tenant.initiator_user_id)
        return ids
