"""Each tenant's own database: a SQLite file under the data dir, or a PostgreSQL database."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql
from sqlalchemy import text

from ..domain import Tenant
from . import migrations
from .db import make_engine

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _checked(slug: str) -> str:
    # the domain already allows only this shape; checked again where it becomes a name
    if not _SLUG.fullmatch(slug) or len(slug) > 40:
        raise ValueError(f"not a tenant slug: {slug!r}")
    return slug


class TenantDatabases:
    """DatabaseMigrator: create, migrate (Alembic) and seed tenant databases."""

    def __init__(self, catalog_url: str, data_dir: Path) -> None:
        self.catalog_url = catalog_url
        self.postgres = catalog_url.startswith(("postgresql://", "postgres://"))
        self.folder = data_dir / "tenants"

    def database_name(self, slug: str) -> str:
        """The tenant database's name (PostgreSQL) or file name (SQLite)."""
        base = _checked(slug).replace("-", "_")
        return f"diquis_tenant_{base}" if self.postgres else f"{base}.db"

    def url(self, slug: str) -> str:
        """The tenant database's URL."""
        name = self.database_name(slug)
        if self.postgres:
            parts = urlsplit(self.catalog_url)
            return urlunsplit(parts._replace(path="/" + name))
        return f"sqlite:///{self.folder / name}"

    async def ensure_database(self, slug: str) -> None:
        await asyncio.to_thread(self._ensure, slug)

    def _ensure(self, slug: str) -> None:
        name = self.database_name(slug)
        if not self.postgres:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = (self.folder / name).resolve()
            if path.parent != self.folder.resolve():
                raise ValueError(f"tenant database path escapes the data dir: {path}")
            path.touch(exist_ok=True)
            return
        # CREATE DATABASE cannot run inside a transaction: a separate autocommit connection
        with psycopg.connect(self.catalog_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                return  # created by a concurrent run of the same job: reuse it

    async def migrate(self, slug: str) -> None:
        await asyncio.to_thread(self.upgrade, slug)

    def upgrade(self, slug: str) -> None:
        """Run the tenant migrations now (blocking; ``diquis migrate``)."""
        engine = make_engine(self.url(slug))
        try:
            migrations.upgrade(engine, "tenant")
        finally:
            engine.dispose()

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

    def exists(self, slug: str) -> bool:
        """Whether the tenant's database exists (blocking; ``diquis migrate``)."""
        name = self.database_name(slug)
        if not self.postgres:
            return (self.folder / name).exists()
        with psycopg.connect(self.catalog_url, autocommit=True) as conn:
            return (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                is not None
            )

    def drop_all(self, slugs: list[str]) -> None:
        """Drop tenant databases (tests clean up with this)."""
        for slug in slugs:
            name = self.database_name(slug)
            if self.postgres:
                with psycopg.connect(self.catalog_url, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
            else:
                (self.folder / name).unlink(missing_ok=True)
