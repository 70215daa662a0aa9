"""Alembic environment: runs on the connection the caller passes in config.attributes."""

from __future__ import annotations

import zlib

from alembic import context
from sqlalchemy import text

config = context.config
connection = config.attributes["connection"]
version_table = config.attributes["version_table"]
if connection.dialect.name == "postgresql":
    # one migrator at a time per database, whatever process it runs in
    connection.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(version_table.encode())}
    )
context.configure(connection=connection, version_table=version_table, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
