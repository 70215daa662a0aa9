"""The tenancy domain's rules, without a database: names, slugs, e-mails, the status table."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from diquis.tenancy.domain import (
    NAME_MAX,
    RESERVED_SLUGS,
    STATUS_TRANSITIONS,
    ConflictError,
    ProvisioningStatus,
    Tenant,
    ValidationError,
    validate_email,
    validate_tenant_name,
)

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
P = ProvisioningStatus


@pytest.mark.parametrize(
    ("raw", "name", "slug"),
    [
        ("Acme", "Acme", "acme"),
        ("  Acme   Corp  ", "Acme Corp", "acme-corp"),
        ("Smith & Sons", "Smith & Sons", "smith-sons"),
        ("O'Brien-Ltd.", "O'Brien-Ltd.", "o-brien-ltd"),
        ("A1", "A1", "a1"),
    ],
)
def test_a_good_name_is_cleaned_and_slugged(raw: str, name: str, slug: str) -> None:
    assert validate_tenant_name(raw) == (name, slug)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (None, "must be a string"),
        ("   ", "must not be empty"),
        ("x" * (NAME_MAX + 1), f"at most {NAME_MAX}"),
        ("Acmé", "ASCII"),
        ("Ａcme", "ASCII"),  # a full-width look-alike
        ("acme; drop table", "may use only"),
        ("-acme", "may use only"),
        ("../etc", "may use only"),
        ("a", "at least two"),
        ("Admin", "reserved"),
    ],
)
def test_a_bad_name_is_refused_naming_the_field(raw: object, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_tenant_name(raw, field="company")
    assert caught.value.field == "company"
    assert why in caught.value.message


def test_every_reserved_slug_is_refused() -> None:
    for slug in RESERVED_SLUGS:
        with pytest.raises(ValidationError, match="reserved"):
            validate_tenant_name(slug)


def test_a_long_name_gives_a_slug_of_at_most_forty_characters() -> None:
    _, slug = validate_tenant_name("Abcdefghij " * 5)
    assert len(slug) <= 40 and not slug.endswith("-")


@pytest.mark.parametrize("raw", ["Admin@Acme.Test", "  a.b+c@acme.co.uk "])
def test_an_email_is_trimmed_and_lower_cased(raw: str) -> None:
    assert validate_email(raw) == raw.strip().lower()


@pytest.mark.parametrize(
    "raw", [None, "", "acme.test", "a@b", "a@-acme.test", "a b@acme.test", "a@" + "x" * 250 + ".io"]
)
def test_a_bad_email_is_refused_naming_the_field(raw: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_email(raw, field="admin_email")
    assert caught.value.field == "admin_email"


ALLOWED = {
    (P.PENDING, P.PROVISIONING),
    (P.PROVISIONING, P.PROVISIONING),
    (P.PROVISIONING, P.ACTIVE),
    (P.PROVISIONING, P.FAILED),
    (P.FAILED, P.PROVISIONING),
    (P.FAILED, P.FAILED),
    (P.ACTIVE, P.ACTIVE),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(P, P)))
def test_the_status_table_on_every_pair(old: ProvisioningStatus, new: ProvisioningStatus) -> None:
    assert (new in STATUS_TRANSITIONS[old]) == ((old, new) in ALLOWED)
    tenant = Tenant.new("Acme", "acme", "a@acme.test", None, NOW)
    tenant = tenant.__class__(**{**tenant.__dict__, "status": old})
    later = NOW + dt.timedelta(seconds=1)
    if (old, new) in ALLOWED:
        moved = tenant.moved_to(new, later, "why" if new is P.FAILED else None)
        assert moved.status is new and moved.updated_at == later
        assert moved.failures == tenant.failures + (1 if new is P.FAILED else 0)
    else:
        with pytest.raises(ConflictError):
            tenant.moved_to(new, later)


def test_a_new_tenant_is_pending_with_no_job() -> None:
    tenant = Tenant.new("Acme", "acme", "a@acme.test", "u1", NOW)
    assert tenant.status is P.PENDING and tenant.job_id is None and tenant.failures == 0
    assert tenant.created_at == tenant.updated_at == NOW
    assert Tenant.new("Acme", "acme", "a@acme.test", "u1", NOW).id != tenant.id
