"""Alembic migrations for the catalog and for every tenant database, run in-process."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).parent
CATALOG_VERSION_TABLE = "diquis_catalog_version"
TENANT_VERSION_TABLE = "diquis_tenant_version"


def _config(kind: str, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE / kind))
    config.attributes["version_table"] = version_table
    return config


def upgrade(engine: Engine, kind: str) -> None:
    """Bring ``engine``'s database to the newest ``kind`` ("catalog" or "tenant") schema.

    The env scripts take a lock first (BEGIN IMMEDIATE on SQLite, an advisory lock on
    PostgreSQL), so processes that start together upgrade one after the other.
    """
    table = CATALOG_VERSION_TABLE if kind == "catalog" else TENANT_VERSION_TABLE
    config = _config(kind, table)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def run_env() -> None:
    """The body of both env.py scripts: migrate on the connection the caller passed in."""
    import zlib

    from alembic import context
    from sqlalchemy import text

    config = context.config
    connection = config.attributes["connection"]
    version_table = config.attributes["version_table"]
    if connection.dialect.name == "postgresql":
        # one migrator at a time per database, whatever process it runs in
        key = zlib.crc32(version_table.encode())
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    context.configure(connection=connection, version_table=version_table, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def current(engine: Engine, kind: str) -> str | None:
    """The revision ``engine``'s database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    table = CATALOG_VERSION_TABLE if kind == "catalog" else TENANT_VERSION_TABLE
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": table})
        return context.get_current_revision()
