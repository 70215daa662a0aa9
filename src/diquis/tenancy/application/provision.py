"""ProvisionTenantJob: the background job that gives a tenant its own, ready database."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from ..domain import ProvisioningStatus, Tenant
from .ports import (
    DatabaseMigrator,
    Email,
    FaultInjector,
    Mailer,
    Notifier,
    TenantRepository,
    UserDirectory,
)

log = logging.getLogger(__name__)


class ProvisioningError(Exception):
    """A provisioning step failed; its message is safe to show to the person who asked."""


def welcome_key(tenant_id: str) -> str:
    """The once-only key of a tenant's welcome e-mail."""
    return f"welcome:{tenant_id}"


def tenant_link(tenant_id: str) -> str:
    """The web app's page of a tenant (what its notifications link to)."""
    return f"/tenants/{tenant_id}"


def welcome_email(tenant: Tenant, link: str, action: str) -> Email:
    """The welcome e-mail to a tenant's admin, with a link to set a password or log in."""
    text = (
        f"Welcome to Diquis!\n\nYour organisation {tenant.name} is ready.\n"
        f"{action}: {link}\n\nThe link is valid for 72 hours and can be used once.\n"
    )
    html = (
        f"<p>Welcome to Diquis!</p><p>Your organisation <b>{_escape(tenant.name)}</b> is "
        f'ready.</p><p><a href="{_escape(link)}">{action}</a></p>'
        "<p>The link is valid for 72 hours and can be used once.</p>"
    )
    return Email(
        to=tenant.admin_email, subject=f"Welcome to {tenant.name} on Diquis", text=text, html=html
    )


def safe_reason(step: str, exc: BaseException) -> str:
    """A short reason for the UI: the step and the error's kind, never a trace or a DSN."""
    if isinstance(exc, ProvisioningError):
        return f"{step} failed: {exc}"[:200]
    return f"{step} failed ({type(exc).__name__})"


#: what provisioning does, in order, as people see it (TenantProgress: step of 4)
STEPS = (
    "Creating the database",
    "Running migrations",
    "Seeding",
    "Sending welcome e-mail",
)


class ProvisionTenantJob:
    """Create the database, migrate, seed, activate, notify, e-mail — each step repeatable."""

    def __init__(
        self,
        tenants: TenantRepository,
        users: UserDirectory,
        migrator: DatabaseMigrator,
        notifier: Notifier,
        mailer: Mailer,
        faults: FaultInjector,
        public_url: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.tenants = tenants
        self.users = users
        self.migrator = migrator
        self.notifier = notifier
        self.mailer = mailer
        self.faults = faults
        self.public_url = public_url
        self.clock = clock

    async def execute(self, tenant_id: str, initiator_user_id: str | None) -> str:
        """Provision ``tenant_id``; re-raises failures so the job engine retries."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            log.warning("tenant %s no longer exists; nothing to provision", tenant_id)
            return "missing"
        if tenant.status is not ProvisioningStatus.ACTIVE:
            tenant = await self._move(tenant, ProvisioningStatus.PROVISIONING)
            step = "create_database"
            try:
                await self._progress(tenant, 1)
                await self.faults.step(step)
                await self.migrator.ensure_database(tenant.slug, tenant.id)
                step = "migrate"
                await self._progress(tenant, 2)
                await self.faults.step(step)
                await self.migrator.migrate(tenant.slug)
                step = "seed"
                await self._progress(tenant, 3)
                await self.faults.step(step)
                await self.users.ensure_tenant_admin(tenant.id, tenant.admin_email)
                await self.migrator.seed(tenant.slug, tenant)
            except Exception as exc:
                reason = safe_reason(step, exc)
                tenant = await self._move(tenant, ProvisioningStatus.FAILED, reason)
                if initiator_user_id is not None:
                    await self.notifier.notify_user(
                        initiator_user_id,
                        "Error",
                        f"Provisioning failed: {tenant.name}: {reason}",
                        key=f"tenant:{tenant.id}:failed:{tenant.failures}",
                        link=tenant_link(tenant.id),
                    )
                raise
            # the last step is announced before the badge turns Active, so the list never
            # shows Active next to a step that is already behind it
            await self._progress(tenant, 4)
            tenant = await self._move(tenant, ProvisioningStatus.ACTIVE)
        else:
            await self._progress(tenant, 4)
        # Active from here on: what is left only tells people, once per key, and a
        # failure is retried by the engine without touching the tenant's status.
        await self.faults.step("notify")
        if initiator_user_id is not None:
            await self.notifier.notify_user(
                initiator_user_id, "Success", f"Tenant {tenant.name} is ready.",
                key=f"tenant:{tenant.id}:ready", link=tenant_link(tenant.id),
            )  # fmt: skip
        await self.faults.step("email")
        await self._welcome(tenant)
        await self._progress(tenant, len(STEPS) + 1)
        return "active"

    async def _progress(self, tenant: Tenant, step: int) -> None:
        label = STEPS[step - 1] if step <= len(STEPS) else "Ready"
        await self.notifier.tenant_progress(tenant, step, len(STEPS), label)

    async def _move(
        self, tenant: Tenant, status: ProvisioningStatus, error: str | None = None
    ) -> Tenant:
        moved = tenant.moved_to(status, self.clock(), error)
        await self.tenants.save(moved)
        await self.notifier.tenant_status_changed(moved)
        return moved

    async def _welcome(self, tenant: Tenant) -> None:
        key = welcome_key(tenant.id)
        if await self.mailer.was_sent(key):
            return
        admin_id = await self.users.ensure_tenant_admin(tenant.id, tenant.admin_email)
        if await self.users.has_password(admin_id):
            link = f"{self.public_url}/login"
            action = "Log in"
        else:
            token = await self.users.issue_password_token(admin_id)
            link = f"{self.public_url}/set-password?token={token}"
            action = "Set your password"
        await self.mailer.send(welcome_email(tenant, link, action), key=key)


def _escape(value: str) -> str:
    from html import escape

    return escape(value, quote=True)
