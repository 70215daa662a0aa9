"""Each tenant's own database: a SQLite file under the data dir, or a PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql
from sqlalchemy import delete, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..application.provision import ProvisioningError
from ..domain import Tenant
from . import migrations
from .db import Catalog, installation, make_engine, tenant_database_claims

log = logging.getLogger(__name__)

#: the table in every tenant database that says which installation and tenant it belongs to
MARKER_TABLE = "diquis_tenant_marker"


class ForeignDatabaseError(ProvisioningError):
    """A database with the tenant's name exists and does not belong to this installation."""


_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _checked(slug: str) -> str:
    # the domain already allows only this shape; checked again where it becomes a name
    if not _SLUG.fullmatch(slug) or len(slug) > 40:
        raise ValueError(f"not a tenant slug: {slug!r}")
    return slug


class TenantDatabases:
    """DatabaseMigrator: create, claim, migrate (Alembic) and seed tenant databases.

    A database is this installation's if it carries our marker (installation id + tenant
    id), or if the catalog recorded a claim on its name before creating it and it still has
    no tables (a crash between ``CREATE DATABASE`` and the marker). Anything else with the
    tenant's name is someone else's and is never migrated, seeded or dropped.
    """

    def __init__(
        self, catalog_url: str, data_dir: Path, catalog: Catalog, prefix: str = "diquis_tenant_"
    ) -> None:
        self.catalog_url = catalog_url
        self.prefix = prefix
        self.catalog = catalog
        self.postgres = catalog_url.startswith(("postgresql://", "postgres://"))
        self.folder = data_dir / "tenants"
        self._installation: str | None = None

    def database_name(self, slug: str) -> str:
        """The tenant database's name (PostgreSQL) or file name (SQLite)."""
        base = _checked(slug).replace("-", "_")
        return f"{self.prefix}{base}" if self.postgres else f"{base}.db"

    def url(self, slug: str) -> str:
        """The tenant database's URL."""
        name = self.database_name(slug)
        if self.postgres:
            parts = urlsplit(self.catalog_url)
            return urlunsplit(parts._replace(path="/" + name))
        return f"sqlite:///{self._path(name)}"

    def _path(self, name: str) -> Path:
        path = (self.folder / name).resolve()
        if path.parent != self.folder.resolve():
            raise ValueError(f"tenant database path escapes the data dir: {path}")
        return path

    def installation_id(self) -> str:
        """This installation's id (made by the catalog migration, read once)."""
        if self._installation is None:
            self._installation = str(
                self.catalog.run_sync(lambda c: c.execute(select(installation.c.id)).scalar_one())
            )
        return self._installation

    # -- create and claim ---------------------------------------------------------------

    async def ensure_database(self, slug: str, tenant_id: str) -> None:
        await asyncio.to_thread(self.ensure, slug, tenant_id)

    def ensure(self, slug: str, tenant_id: str) -> None:
        """Create the tenant's database, or make sure the one there is ours (blocking)."""
        name = self.database_name(slug)
        if not self.exists(slug):
            self._claim(name, tenant_id)  # before creating: a crash after it still converges
            self._create(name)
        self._adopt_or_refuse(slug, tenant_id)

    def _claim(self, name: str, tenant_id: str) -> None:
        def write(conn: Connection) -> str:
            nested = conn.begin_nested()
            try:
                conn.execute(
                    insert(tenant_database_claims).values(
                        name=name, tenant_id=tenant_id, claimed_at=dt.datetime.now(dt.UTC)
                    )
                )
                nested.commit()
            except IntegrityError:
                nested.rollback()
            owner = conn.execute(
                select(tenant_database_claims.c.tenant_id).where(
                    tenant_database_claims.c.name == name
                )
            ).scalar_one()
            return str(owner)

        owner = self.catalog.run_sync(write)
        if owner != tenant_id:
            raise ForeignDatabaseError(f"the database name {name} is claimed by another tenant")

    def _claimed_by(self, name: str) -> str | None:
        owner = self.catalog.run_sync(
            lambda c: c.execute(
                select(tenant_database_claims.c.tenant_id).where(
                    tenant_database_claims.c.name == name
                )
            ).scalar_one_or_none()
        )
        return None if owner is None else str(owner)

    def _create(self, name: str) -> None:
        if not self.postgres:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._path(name).touch(exist_ok=True)
            return
        # CREATE DATABASE cannot run inside a transaction: a separate autocommit connection;
        # one made meanwhile by a concurrent run of the job (or by someone else) is checked next
        with (
            psycopg.connect(self.catalog_url, autocommit=True) as conn,
            contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation),
        ):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _adopt_or_refuse(self, slug: str, tenant_id: str) -> None:
        name = self.database_name(slug)
        mine = (self.installation_id(), tenant_id)
        engine = make_engine(self.url(slug))
        try:
            with engine.begin() as conn:
                tables = set(inspect(conn).get_table_names())
                if MARKER_TABLE in tables:
                    row = conn.execute(
                        text(f"SELECT installation_id, tenant_id FROM {MARKER_TABLE}")
                    ).first()
                    if row is not None and (str(row[0]), str(row[1])) == mine:
                        return
                    raise self._foreign(name)
                if tables or self._claimed_by(name) != tenant_id:
                    raise self._foreign(name)
                _write_marker(conn, *mine)
        finally:
            engine.dispose()

    def _foreign(self, name: str) -> ForeignDatabaseError:
        kind = "database" if self.postgres else "database file"
        return ForeignDatabaseError(
            f"a {kind} named {name} already exists and does not belong to this installation"
        )

    def stamp(self, slug: str, tenant_id: str) -> bool:
        """Claim and mark a tenant database made before markers existed (``diquis migrate``).

        Only databases with no marker at all are stamped; whether it was stamped now.
        """
        name = self.database_name(slug)
        engine = make_engine(self.url(slug))
        try:
            with engine.begin() as conn:
                if MARKER_TABLE in set(inspect(conn).get_table_names()):
                    return False
                self._claim(name, tenant_id)
                _write_marker(conn, self.installation_id(), tenant_id)
                return True
        finally:
            engine.dispose()

    def owns(self, slug: str, tenant_id: str) -> bool:
        """Whether the tenant's database exists and carries our marker for that tenant."""
        if not self.exists(slug):
            return False
        engine = make_engine(self.url(slug))
        try:
            with engine.connect() as conn:
                if MARKER_TABLE not in set(inspect(conn).get_table_names()):
                    return False
                row = conn.execute(
                    text(f"SELECT installation_id, tenant_id FROM {MARKER_TABLE}")
                ).first()
        finally:
            engine.dispose()
        return row is not None and (str(row[0]), str(row[1])) == (self.installation_id(), tenant_id)

    # -- schema and data ----------------------------------------------------------------

    async def migrate(self, slug: str) -> None:
        await asyncio.to_thread(self.upgrade, slug)

    def upgrade(self, slug: str) -> None:
        """Run the tenant migrations now and repair a half-made schema (blocking)."""
        engine = make_engine(self.url(slug))
        try:
            repaired = migrations.upgrade_and_repair(engine, "tenant")
        finally:
            engine.dispose()
        if repaired:
            log.warning(
                "tenant database of %s was stamped as migrated without %s: re-created them",
                slug, ", ".join(sorted(repaired)),
            )  # fmt: skip

    async def seed(self, slug: str, tenant: Tenant) -> None:
        await asyncio.to_thread(self._seed, slug, tenant)

    def _seed(self, slug: str, tenant: Tenant) -> None:
        engine = make_engine(self.url(slug))
        upsert = text(
            "INSERT INTO tenant_settings (key, value) VALUES (:key, :value)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        try:
            with engine.begin() as conn:
                for key, value in (
                    ("tenant_id", tenant.id), ("name", tenant.name), ("slug", tenant.slug),
                    ("locale", "en"), ("timezone", "UTC"), ("plan", "trial"),
                ):  # fmt: skip
                    conn.execute(upsert, {"key": key, "value": value})
                conn.execute(
                    text(
                        "INSERT INTO audit_log (id, at, action) VALUES (:id, :at, :action)"
                        " ON CONFLICT (id) DO NOTHING"
                    ),
                    {
                        "id": "provisioned",
                        "at": dt.datetime.now(dt.UTC),
                        "action": "Tenant provisioned",
                    },
                )
        finally:
            engine.dispose()

    # -- existence and removal ----------------------------------------------------------

    def exists(self, slug: str) -> bool:
        """Whether the tenant's database exists (blocking)."""
        name = self.database_name(slug)
        if not self.postgres:
            return self._path(name).exists()
        with psycopg.connect(self.catalog_url, autocommit=True) as conn:
            return (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                is not None
            )

    async def drop_database(self, slug: str, tenant_id: str) -> bool:
        return await asyncio.to_thread(self.drop, slug, tenant_id)

    def drop(self, slug: str, tenant_id: str) -> bool:
        """Drop the tenant's database if it carries our marker; release the name's claim.

        Returns whether a database was dropped. A database that is not ours stays.
        """
        name = self.database_name(slug)
        dropped = False
        if self.owns(slug, tenant_id):
            self._drop(name)
            dropped = True
        self.catalog.run_sync(
            lambda c: c.execute(
                delete(tenant_database_claims).where(
                    (tenant_database_claims.c.name == name)
                    & (tenant_database_claims.c.tenant_id == tenant_id)
                )
            )
        )
        return dropped

    def _drop(self, name: str) -> None:
        if self.postgres:
            with psycopg.connect(self.catalog_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        else:
            path = self._path(name)
            for extra in ("-wal", "-shm"):
                path.with_name(path.name + extra).unlink(missing_ok=True)
            path.unlink(missing_ok=True)

    def drop_all(self, slugs: list[str]) -> None:
        """Drop tenant databases whatever their marker (tests clean up with this)."""
        for slug in slugs:
            self._drop(self.database_name(slug))


def _write_marker(conn: Connection, installation_id: str, tenant_id: str) -> None:
    execute = conn.execute
    execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (installation_id VARCHAR(36) NOT NULL,"
            " tenant_id VARCHAR(36) NOT NULL, created_at VARCHAR(40) NOT NULL)"
        )
    )
    if execute(text(f"SELECT 1 FROM {MARKER_TABLE}")).first() is None:
        execute(
            text(f"INSERT INTO {MARKER_TABLE} VALUES (:installation, :tenant, :at)"),
            {
                "installation": installation_id,
                "tenant": tenant_id,
                "at": dt.datetime.now(dt.UTC).isoformat(),
            },
        )
