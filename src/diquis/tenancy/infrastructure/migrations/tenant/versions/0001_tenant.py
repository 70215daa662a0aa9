"""A tenant's own database: its settings and an audit log."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_tenant"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        if_not_exists=True,  # a repair re-runs this over a half-made database
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("tenant_settings")
