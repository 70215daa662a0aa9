"""Tenants and their provisioning status; the rules for names, slugs and e-mails."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum


class TenancyError(Exception):
    """Base class of the application's errors."""


class ValidationError(TenancyError):
    """Bad input; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidFieldsError(ValidationError):
    """Several bad fields at once, so a form can show every error in one answer."""

    def __init__(self, errors: list[ValidationError]) -> None:
        super().__init__(errors[0].field, errors[0].message)
        self.errors = errors


def check_all(*checks: Callable[[], object]) -> list[object]:
    """Run every check; their results, or InvalidFieldsError with every failure."""
    results: list[object] = []
    failed: list[ValidationError] = []
    for check in checks:
        try:
            results.append(check())
        except InvalidFieldsError as exc:
            failed.extend(exc.errors)
        except ValidationError as exc:
            failed.append(exc)
    if failed:
        raise InvalidFieldsError(failed)
    return results


class DuplicateTenantError(TenancyError):
    """A tenant with that name (or slug) exists already."""


class AdminEmailTakenError(TenancyError):
    """Another tenant was created for that admin e-mail already."""


class TenantNotFoundError(TenancyError):
    """No tenant has that id."""


class ConflictError(TenancyError):
    """The action does not fit the tenant's current state."""


class ProvisioningStatus(StrEnum):
    """Where a tenant is on its way to a usable database."""

    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    ACTIVE = "Active"
    FAILED = "Failed"


#: allowed status changes; re-entering Provisioning is how a retry converges
STATUS_TRANSITIONS: dict[ProvisioningStatus, frozenset[ProvisioningStatus]] = {
    ProvisioningStatus.PENDING: frozenset({ProvisioningStatus.PROVISIONING}),
    ProvisioningStatus.PROVISIONING: frozenset(
        {ProvisioningStatus.PROVISIONING, ProvisioningStatus.ACTIVE, ProvisioningStatus.FAILED}
    ),
    ProvisioningStatus.FAILED: frozenset(
        {ProvisioningStatus.PROVISIONING, ProvisioningStatus.FAILED}
    ),
    ProvisioningStatus.ACTIVE: frozenset({ProvisioningStatus.ACTIVE}),
}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .&'-]*[A-Za-z0-9.]|[A-Za-z0-9]")
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
RESERVED_SLUGS = frozenset(
    {"admin", "api", "www", "hangfire", "hubs", "static", "postgres", "template0", "template1",
     "diquis", "root", "system", "public"}
)  # fmt: skip
NAME_MAX = 60
SLUG_MAX = 40


def validate_tenant_name(raw: object, field: str = "name") -> tuple[str, str]:
    """A clean tenant name and its slug, or ValidationError naming ``field``.

    The allow-list is plain ASCII letters, digits, spaces and ``.&'-``: no quotes that
    could end an SQL identifier, no slashes or dots-only names that could walk a path, and
    no look-alike Unicode letters that would let two tenants appear to have one name.
    """
    if not isinstance(raw, str):
        raise ValidationError(field, "must be a string")
    name = " ".join(raw.split())
    if not name:
        raise ValidationError(field, "must not be empty")
    if len(name) > NAME_MAX:
        raise ValidationError(field, f"must be at most {NAME_MAX} characters")
    if unicodedata.normalize("NFKC", name) != name or not name.isascii():
        raise ValidationError(field, "may use only ASCII letters, digits, spaces and . & ' -")
    if not _NAME.fullmatch(name):
        raise ValidationError(
            field,
            "may use only letters, digits, spaces and . & ' -, starting with a letter or digit",
        )
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:SLUG_MAX].strip("-")
    if len(slug) < 2:
        raise ValidationError(field, "must contain at least two letters or digits")
    if slug in RESERVED_SLUGS:
        raise ValidationError(field, f"{name!r} is reserved")
    return name, slug


def validate_email(raw: object, field: str = "email") -> str:
    """A normalised (lower-case) e-mail address, or ValidationError naming ``field``."""
    if not isinstance(raw, str):
        raise ValidationError(field, "must be a string")
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise ValidationError(field, "is not a valid e-mail address")
    return email


@dataclass(frozen=True)
class Tenant:
    """A customer organisation with its own database."""

    id: str
    name: str
    slug: str
    status: ProvisioningStatus
    admin_email: str
    initiator_user_id: str | None
    job_id: str | None
    last_error: str | None
    failures: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def new(
        cls, name: str, slug: str, admin_email: str, initiator_user_id: str | None, now: dt.datetime
    ) -> Tenant:
        """A Pending tenant, not yet stored."""
        return cls(
            id=str(uuid.uuid4()), name=name, slug=slug, status=ProvisioningStatus.PENDING,
            admin_email=admin_email, initiator_user_id=initiator_user_id, job_id=None,
            last_error=None, failures=0, created_at=now, updated_at=now,
        )  # fmt: skip

    def moved_to(
        self, status: ProvisioningStatus, now: dt.datetime, error: str | None = None
    ) -> Tenant:
        """This tenant in ``status``; ConflictError if the status machine forbids it."""
        if status not in STATUS_TRANSITIONS[self.status]:
            raise ConflictError(f"tenant {self.name!r} cannot go from {self.status} to {status}")
        failures = self.failures + (1 if status is ProvisioningStatus.FAILED else 0)
        return replace(self, status=status, last_error=error, failures=failures, updated_at=now)
