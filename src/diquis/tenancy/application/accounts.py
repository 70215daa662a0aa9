"""Account recovery: "Forgot password?" and a super admin's "Resend welcome e-mail".

Both answer at once and leave the work (a new single-use link, an e-mail) to a job, so the
answer neither waits for SMTP nor tells, by its content or its timing, whether an address
has an account: a reset for an unknown address enqueues the same job, which finds no one.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from ..domain import ConflictError, ProvisioningStatus, TenantNotFoundError, validate_email
from .ports import BackgroundJobService, Email, Mailer, TenantRepository, UserDirectory
from .provision import welcome_email

RESET_ANSWER = (
    "If an account uses that address, we have sent it a link to choose a new password. "
    "The link works for one hour, once."
)


class Account(Protocol):
    """The few facts about a user that recovery needs."""

    @property
    def user_id(self) -> str:
        """The user's id."""
        ...


class AccountDirectory(UserDirectory, Protocol):
    """Users, found by e-mail too."""

    async def by_email(self, email: str) -> Account | None:
        """The user with this (normalised) address, or None."""
        ...


class AccountRecovery:
    """The requests behind the recovery routes: checked here, carried out by a job."""

    def __init__(self, tenants: TenantRepository, jobs: BackgroundJobService) -> None:
        self.tenants = tenants
        self.jobs = jobs

    @staticmethod
    def validate(email: object) -> str:
        """The normalised address, or ValidationError for a bad format."""
        return validate_email(email, "email")

    async def request_reset(self, email: str) -> None:
        """Enqueue the reset e-mail job, whether or not the address has an account."""
        await self.jobs.enqueue(AccountMailJob.reset, self.validate(email))

    async def resend_welcome(self, tenant_id: str) -> None:
        """Enqueue a new welcome e-mail for an Active tenant's admin (ConflictError otherwise)."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise TenantNotFoundError(f"tenant {tenant_id} does not exist")
        if tenant.status is not ProvisioningStatus.ACTIVE:
            raise ConflictError(
                f"tenant {tenant.name!r} is {tenant.status.value}: its welcome e-mail goes out "
                "when it is Active"
            )
        await self.jobs.enqueue(AccountMailJob.welcome, tenant.id)


class AccountMailJob:
    """The e-mails of account recovery, each with a new link that replaces older ones."""

    def __init__(
        self,
        users: AccountDirectory,
        tenants: TenantRepository,
        mailer: Mailer,
        public_url: str,
    ) -> None:
        self.users = users
        self.tenants = tenants
        self.mailer = mailer
        self.public_url = public_url

    async def reset(self, email: str) -> bool:
        """Send a 1-hour reset link if ``email`` has an account; whether one was sent."""
        account = await self.users.by_email(email)
        if account is None:
            return False
        token = await self.users.issue_password_token(account.user_id, "reset")
        link = f"{self.public_url}/set-password?token={token}"
        text = (
            "Someone (we hope you) asked to reset the password of your Diquis account.\n\n"
            f"Choose a new password: {link}\n\nThe link works for one hour, once. If you did "
            "not ask for it, ignore this e-mail: your password stays as it is.\n"
        )
        return await self.mailer.send(
            Email(to=email, subject="Reset your Diquis password", text=text),
            key=f"reset:{uuid.uuid4()}",
        )

    async def welcome(self, tenant_id: str) -> bool:
        """Send the tenant's admin a new welcome e-mail; whether the tenant still exists."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None or tenant.status is not ProvisioningStatus.ACTIVE:
            return False
        admin_id = await self.users.ensure_tenant_admin(tenant.id, tenant.admin_email)
        token = await self.users.issue_password_token(admin_id, "welcome")
        link = f"{self.public_url}/set-password?token={token}"
        email = welcome_email(tenant, link, "Set your password")
        return await self.mailer.send(email, key=f"welcome:{tenant.id}:{uuid.uuid4()}")
