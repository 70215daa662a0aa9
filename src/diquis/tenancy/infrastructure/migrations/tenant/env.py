"""Alembic environment: runs on the connection the caller passes in config.attributes."""

from diquis.tenancy.infrastructure.migrations import run_env

run_env()
