"""The reconciler's rule table and its repairs, on fakes of the application's ports."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from diquis.tenancy.application.ports import JobStatus
from diquis.tenancy.application.reconcile import Reconciler, repair_for
from diquis.tenancy.domain import ProvisioningStatus, Tenant

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
P = ProvisioningStatus


def _tenant(status: ProvisioningStatus, **changes: Any) -> Tenant:
    base = Tenant.new("Acme", "acme", "a@acme.test", "initiator", NOW)
    return dataclasses.replace(base, status=status, job_id="7", **changes)


@pytest.mark.parametrize(
    ("status", "job", "kind"),
    [
        (P.PENDING, JobStatus("Deleted", 0, None), "cancelled"),
        (P.PROVISIONING, JobStatus("Deleted", 1, None), "cancelled"),
        (P.FAILED, JobStatus("Deleted", 2, "x"), "cancelled"),
        (P.PROVISIONING, JobStatus("Failed", 11, "x"), "gave_up"),
        (P.FAILED, JobStatus("Failed", 11, "x"), "gave_up"),
        (P.PENDING, None, "job_missing"),
        (P.ACTIVE, JobStatus("Deleted", 1, None), "welcome_not_sent"),
        (P.ACTIVE, JobStatus("Failed", 11, "smtp"), "welcome_not_sent"),
        (P.ACTIVE, JobStatus("Succeeded", 1, None), None),
        (P.ACTIVE, None, None),
        (P.FAILED, JobStatus("Scheduled", 1, "x"), None),
        (P.PROVISIONING, JobStatus("Processing", 1, None), None),
        (P.PENDING, JobStatus("Enqueued", 0, None), None),
        (P.FAILED, JobStatus("Enqueued", 3, "x"), None),
    ],
)
def test_the_rule_table(
    status: ProvisioningStatus, job: JobStatus | None, kind: str | None
) -> None:
    repair = repair_for(_tenant(status), job)
    assert (repair.kind if repair else None) == kind


def test_giving_up_names_the_runs_and_the_last_reason() -> None:
    tenant = _tenant(P.FAILED, last_error="migrate failed (KeyError)")
    repair = repair_for(tenant, JobStatus("Failed", 11, "KeyError: x"))
    assert repair is not None
    assert repair.reason == "gave up after 11 runs: migrate failed (KeyError)"


class _Fakes:
    """In-memory ports: one tenant, its job, a notifier and a mailer that record."""

    def __init__(self, tenant: Tenant, job: JobStatus | None, welcome_sent: bool = False) -> None:
        self.tenant = tenant
        self.job = job
        self.welcome_sent = welcome_sent
        self.notified: list[tuple[str, str, str, str]] = []
        self.statuses: list[str] = []
        self.repairs: list[str] = []

    # TenantRepository
    async def unsettled(self) -> list[Tenant]:
        return [self.tenant] if self.tenant.status is not P.ACTIVE else []

    async def by_job(self, job_id: str) -> Tenant | None:
        return self.tenant if self.tenant.job_id == job_id else None

    async def fail_unless_active(self, tenant_id: str, reason: str, now: Any) -> Tenant | None:
        t = self.tenant
        if t.status is P.ACTIVE or (t.status is P.FAILED and t.last_error == reason):
            return None
        self.tenant = dataclasses.replace(
            t, status=P.FAILED, last_error=reason, failures=t.failures + 1
        )
        return self.tenant

    async def count_repair(self, kind: str) -> None:
        self.repairs.append(kind)

    # BackgroundJobService
    async def status(self, job_id: str) -> JobStatus | None:
        return self.job

    # Notifier
    async def notify_user(self, user_id: str, kind: str, message: str, *, key: str) -> bool:
        if any(n[3] == key for n in self.notified):
            return False
        self.notified.append((user_id, kind, message, key))
        return True

    async def tenant_status_changed(self, tenant: Tenant) -> None:
        self.statuses.append(tenant.status.value)

    # Mailer / UserDirectory
    async def was_sent(self, key: str) -> bool:
        return self.welcome_sent

    async def superadmins(self) -> list[str]:
        return ["root-1", "initiator"]

    def reconciler(self) -> Reconciler:
        return Reconciler(self, self, self, self, self, clock=lambda: NOW)  # type: ignore[arg-type]


async def test_a_cancelled_job_fails_the_tenant_once_and_tells_initiator_and_super_admins() -> None:
    fakes = _Fakes(_tenant(P.PROVISIONING), JobStatus("Deleted", 1, None))
    reconciler = fakes.reconciler()
    assert await reconciler.job_changed("7") == "cancelled"
    assert await reconciler.run() == {}  # already repaired: nothing twice
    assert fakes.tenant.status is P.FAILED
    assert fakes.tenant.last_error == "Provisioning was cancelled"
    assert sorted(n[0] for n in fakes.notified) == ["initiator", "root-1"]
    assert {n[1] for n in fakes.notified} == {"Error"}
    assert fakes.statuses == ["Failed"] and fakes.repairs == ["cancelled"]


async def test_an_active_tenant_stays_active_and_super_admins_hear_the_e_mail_was_not_sent() -> (
    None
):
    fakes = _Fakes(_tenant(P.ACTIVE), JobStatus("Deleted", 1, None))
    reconciler = fakes.reconciler()
    assert await reconciler.job_changed("7") == "welcome_not_sent"
    assert await reconciler.job_changed("7") is None  # told once
    assert fakes.tenant.status is P.ACTIVE
    [(_, kind, message, _key)] = [n for n in fakes.notified if n[0] == "root-1"]
    assert kind == "Warning" and "welcome e-mail was not sent" in message


async def test_an_active_tenant_whose_welcome_went_out_needs_nothing() -> None:
    fakes = _Fakes(_tenant(P.ACTIVE), JobStatus("Failed", 11, "x"), welcome_sent=True)
    assert await fakes.reconciler().job_changed("7") is None
    assert fakes.notified == []


async def test_a_job_of_another_kind_is_none_of_its_business() -> None:
    fakes = _Fakes(_tenant(P.PROVISIONING), JobStatus("Deleted", 1, None))
    assert await fakes.reconciler().job_changed("8") is None
    assert fakes.tenant.status is P.PROVISIONING
