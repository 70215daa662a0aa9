"""Alembic migrations for the catalog and for every tenant database, run in-process."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

HERE = Path(__file__).parent
CATALOG_VERSION_TABLE = "diquis_catalog_version"
TENANT_VERSION_TABLE = "diquis_tenant_version"

#: the tables each kind's newest schema has (pinned by a test against a fresh migration);
#: a database stamped as migrated but missing one of these is repaired, not trusted
SCHEMA_TABLES: dict[str, frozenset[str]] = {
    "tenant": frozenset({"tenant_settings", "audit_log"}),
}

# Alembic's ``context`` and ``op`` are process-global proxies: two upgrades running at once
# in threads of one process would run each other's operations on the wrong connection (a
# tenant database stamped as migrated without its tables). One Alembic run per process at a
# time; across processes each database is guarded by its own lock (see run_env).
_ALEMBIC = threading.Lock()


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
    with _ALEMBIC, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def missing_tables(engine: Engine, kind: str) -> set[str]:
    """Tables of ``kind``'s newest schema that ``engine``'s database lacks."""
    with engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
    return set(SCHEMA_TABLES.get(kind, ())) - present


def upgrade_and_repair(engine: Engine, kind: str) -> set[str]:
    """Upgrade, then check the tables are really there; re-run from scratch if not.

    Returns the tables that had to be re-created. The revisions create their tables with
    IF NOT EXISTS, so running them again over a half-made database fills in what is missing
    and leaves what is there alone.
    """
    upgrade(engine, kind)
    missing = missing_tables(engine, kind)
    if not missing:
        return set()
    table = CATALOG_VERSION_TABLE if kind == "catalog" else TENANT_VERSION_TABLE
    with engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {table}"))  # a constant name, not input
    upgrade(engine, kind)
    still = missing_tables(engine, kind)
    if still:
        raise RuntimeError(f"the {kind} database still lacks {sorted(still)} after a repair")
    return missing


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
