"""Public sign-up that reveals nothing: every well-formed request gets the same answer.

Whether the organisation name or the e-mail address is taken is told only to the
address's owner, by e-mail, from a background job (so the answer's timing does not
tell either: each path writes one transaction with one job).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from ..domain import (
    AdminEmailTakenError,
    DuplicateTenantError,
    validate_email,
    validate_tenant_name,
)
from .ports import BackgroundJobService, Email, Mailer
from .use_cases import TenantService

#: what the owner of the address is told, by notice kind
EMAIL_TAKEN = "email-taken"
NAME_TAKEN = "name-taken"


class EmailRegistry(Protocol):
    """Which e-mail addresses have an account."""

    async def email_taken(self, email: str) -> bool:
        """Whether any user has this (normalised) address."""
        ...


class PublicSignup:
    """Scenario B's front door: start a tenant, or tell the address's owner why not."""

    def __init__(
        self, tenants: TenantService, registry: EmailRegistry, jobs: BackgroundJobService
    ) -> None:
        self.tenants = tenants
        self.registry = registry
        self.jobs = jobs

    @staticmethod
    def validate(organisation: object, email: object) -> tuple[str, str]:
        """The clean name and address; ValidationError naming the field for bad formats."""
        name, _ = validate_tenant_name(organisation, "organization")
        return name, validate_email(email, "email")

    async def submit(self, organisation: str, email: str) -> None:
        """Start provisioning, or enqueue a notice to ``email``; the caller cannot tell which."""
        name, address = self.validate(organisation, email)
        if await self.registry.email_taken(address):
            await self._notice(EMAIL_TAKEN, address, name)
            return
        try:
            await self.tenants.create(
                name, address, None, name_field="organization", email_field="email"
            )
        except DuplicateTenantError:
            await self._notice(NAME_TAKEN, address, name)
        except AdminEmailTakenError:
            # another sign-up reserved this address first (its tenant is not provisioned
            # yet, so no account exists): the owner hears of it like any taken address
            await self._notice(EMAIL_TAKEN, address, name)

    async def _notice(self, kind: str, email: str, organisation: str) -> None:
        await self.jobs.enqueue(SignupNoticeJob.send, kind, email, organisation)


class SignupNoticeJob:
    """The e-mail that tells an address's owner about a sign-up that could not go ahead."""

    def __init__(
        self,
        mailer: Mailer,
        public_url: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.mailer = mailer
        self.public_url = public_url
        self.clock = clock

    async def send(self, kind: str, email: str, organisation: str) -> bool:
        """Send the notice; at most one per address, kind and hour (no mail bombing)."""
        hour = self.clock().strftime("%Y%m%d%H")
        if kind == EMAIL_TAKEN:
            subject = "Someone tried to sign up with your address"
            text = (
                f"Someone asked to create the workspace {organisation!r} on Diquis with this "
                "e-mail address, which already has an account, so nothing was created.\n\n"
                f"If it was you, log in at {self.public_url}/login instead. If it was not, "
                "you can ignore this message: your account is unchanged."
            )
        elif kind == NAME_TAKEN:
            subject = "That organisation name is taken"
            text = (
                f"You asked to create the workspace {organisation!r} on Diquis, but that name "
                f"is taken already. Choose another name at {self.public_url}/signup."
            )
        else:
            raise ValueError(f"unknown sign-up notice {kind!r}")
        return await self.mailer.send(
            Email(to=email, subject=subject, text=text), key=f"signup:{kind}:{email}:{hour}"[:200]
        )
