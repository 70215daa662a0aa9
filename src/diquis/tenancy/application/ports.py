"""What the application needs from the outside world, as small protocols."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..domain import Tenant


class Transaction(Protocol):
    """An open unit of work; adapters that take it write inside it (opaque to use cases)."""


class TransactionManager(Protocol):
    """Opens units of work that commit together or not at all."""

    def begin(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """A transaction, committed when the block ends cleanly."""
        ...


@dataclass(frozen=True)
class JobStatus:
    """What the application needs to know of a job: its state, runs so far, last error."""

    state: str  # the engine's state name: Enqueued, Processing, Failed, Deleted, ...
    runs: int
    last_error: str | None


#: job states in which a job will still run (a retry must not start a second one)
JOB_STATES_RUNNING = frozenset({"Enqueued", "Processing"})


class BackgroundJobService(Protocol):
    """Runs a call later, durably, in some worker (the seed's IBackgroundJobService)."""

    async def enqueue(
        self,
        method: Callable[..., Any],
        *args: Any,
        tags: tuple[str, ...] = (),
        tx: Transaction | None = None,
    ) -> str:
        """Schedule ``method(*args)``; with ``tx`` the job exists only if ``tx`` commits."""
        ...

    async def requeue(self, job_id: str) -> None:
        """Run an existing job again now (ConflictError while it is queued or running)."""
        ...

    async def status(self, job_id: str) -> JobStatus | None:
        """The job's state, or None when no such job exists (any more)."""
        ...

    async def delete(self, job_id: str) -> None:
        """Delete the job so it never runs again (a running one is cancelled)."""
        ...


class TenantRepository(Protocol):
    """Tenants in the catalog."""

    async def add(self, tenant: Tenant, tx: Transaction) -> None:
        """Store a new tenant (DuplicateTenantError for a taken name or slug)."""
        ...

    async def set_job(self, tenant_id: str, job_id: str, tx: Transaction) -> None:
        """Remember the tenant's provisioning job."""
        ...

    async def get(self, tenant_id: str) -> Tenant | None:
        """One tenant, or None."""
        ...

    async def list(
        self, limit: int, offset: int, query: str | None = None, status: str | None = None
    ) -> tuple[list[Tenant], int]:
        """A page of tenants, newest first, and the total."""
        ...

    async def save(self, tenant: Tenant) -> None:
        """Store a tenant's new status, error and counters."""
        ...

    async def by_job(self, job_id: str) -> Tenant | None:
        """The tenant whose provisioning job this is, or None."""
        ...

    async def unsettled(self) -> builtins.list[Tenant]:
        """Tenants that are not Active (the reconciler's round)."""
        ...

    async def fail_unless_active(self, tenant_id: str, reason: str, now: Any) -> Tenant | None:
        """Set a not-yet-Active tenant Failed with ``reason``; the tenant if that changed it."""
        ...

    async def count_repair(self, kind: str) -> None:
        """Count one repair of ``kind`` (the reconciler's metric, shared by all processes)."""
        ...

    async def delete(self, tenant_id: str) -> None:
        """Remove the tenant, its users and its admin e-mail reservation."""
        ...


class UserDirectory(Protocol):
    """Users in the catalog, as provisioning needs them."""

    async def ensure_tenant_admin(self, tenant_id: str, email: str) -> str:
        """The id of the tenant's admin user, created once."""
        ...

    async def has_password(self, user_id: str) -> bool:
        """Whether the user has set a password already."""
        ...

    async def issue_password_token(self, user_id: str, purpose: str = "welcome") -> str:
        """A single-use token for a set-password link (stored hashed); older ones stop working."""
        ...

    async def tenant_admins(self, tenant_id: str) -> list[str]:
        """Ids of the tenant's admin users."""
        ...

    async def superadmins(self) -> list[str]:
        """Ids of every super admin."""
        ...


class DatabaseMigrator(Protocol):
    """Each tenant's own database."""

    async def ensure_database(self, slug: str, tenant_id: str) -> None:
        """Create the tenant's database, or reuse it if it is ours (ProvisioningError if not)."""
        ...

    async def migrate(self, slug: str) -> None:
        """Bring the tenant's database to the latest schema (versioned, repeatable)."""
        ...

    async def seed(self, slug: str, tenant: Tenant) -> None:
        """Write the tenant's initial data (upserts: repeatable)."""
        ...

    async def drop_database(self, slug: str, tenant_id: str) -> bool:
        """Drop the tenant's database if it is ours; whether one was dropped."""
        ...


class Notifier(Protocol):
    """Tells people what happened, live and in their inbox."""

    async def notify_user(
        self, user_id: str, kind: str, message: str, *, key: str, link: str | None = None
    ) -> bool:
        """Store and push a notification once per ``key``; whether it was new."""
        ...

    async def tenant_status_changed(self, tenant: Tenant) -> None:
        """Push the tenant's status to super admins and to that tenant's admins."""
        ...

    async def tenant_progress(self, tenant: Tenant, step: int, steps: int, label: str) -> None:
        """Push how far provisioning is (step of steps) to the same people; report it to
        the job running it, if any."""
        ...


@dataclass(frozen=True)
class Email:
    """One e-mail to send."""

    to: str
    subject: str
    text: str
    html: str | None = None


class Mailer(Protocol):
    """Sends e-mail at most once per key."""

    async def was_sent(self, key: str) -> bool:
        """Whether the e-mail with ``key`` went out already."""
        ...

    async def send(self, email: Email, *, key: str) -> bool:
        """Send unless ``key`` was sent already; whether it was sent now."""
        ...


class FaultInjector(Protocol):
    """Dev/test hook that makes named provisioning steps fail (DIQUIS_FAULTS)."""

    async def step(self, name: str) -> None:
        """Called before each step: may wait (demo delay) or raise an injected fault."""
        ...
