"""SqlTenantRepository.add on SQLite and PostgreSQL: one tenant per name and per admin e-mail,
also when two transactions add at once (the second waits, then is refused)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from diquis.tenancy.domain import AdminEmailTakenError, DuplicateTenantError, Tenant
from diquis.tenancy.infrastructure import migrations
from diquis.tenancy.infrastructure.db import Catalog, admin_email_reservations, tenants
from diquis.tenancy.infrastructure.repositories import SqlTenantRepository

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture
async def catalog(database_url: str) -> AsyncIterator[Catalog]:
    catalog = Catalog(database_url)
    migrations.upgrade(catalog.engine, "catalog")
    yield catalog
    catalog.dispose()


def tenant(name: str, email: str) -> Tenant:
    return Tenant.new(name, "-".join(name.lower().split()), email, None, NOW)


async def add(catalog: Catalog, new: Tenant) -> None:
    async with catalog.begin() as tx:
        await SqlTenantRepository(catalog).add(new, tx)


async def counts(catalog: Catalog) -> tuple[int, int]:
    def read(conn: Connection) -> tuple[int, int]:
        def count(table: Table) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

        return count(tenants), count(admin_email_reservations)

    return await catalog.run(read)


async def test_a_taken_name_in_any_case_or_a_reserved_email_is_refused(catalog: Catalog) -> None:
    await add(catalog, tenant("Acme", "a@acme.test"))
    with pytest.raises(DuplicateTenantError, match="Acme"):
        await add(catalog, tenant("ACME", "b@acme.test"))
    with pytest.raises(AdminEmailTakenError):
        await add(catalog, tenant("Globex", "a@acme.test"))
    assert await counts(catalog) == (1, 1)


@pytest.mark.parametrize(
    ("second", "refused"),
    [
        (tenant("Initech", "other@initech.test"), DuplicateTenantError),
        (tenant("Hooli", "owner@initech.test"), AdminEmailTakenError),
    ],
)
async def test_of_two_adds_at_once_the_second_is_refused_and_leaves_nothing(
    catalog: Catalog, second: Tenant, refused: type[Exception]
) -> None:
    async with catalog.begin() as tx:
        await SqlTenantRepository(catalog).add(tenant("Initech", "owner@initech.test"), tx)
        # the other transaction cannot see this row yet: the constraints decide, after the
        # first commits (PostgreSQL waits in the insert, SQLite for the write lock)
        racing = asyncio.ensure_future(add(catalog, second))
        await asyncio.sleep(0.1)
    with pytest.raises(refused):
        await racing
    assert await counts(catalog) == (1, 1)
