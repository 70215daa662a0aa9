"""The catalog: tenants, users, password tokens, notifications, e-mail outbox, rate limits."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_catalog"
down_revision = None
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(60), nullable=False, unique=True),
        sa.Column("slug", sa.String(40), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("admin_email", sa.String(254), nullable=False),
        sa.Column("initiator_user_id", sa.String(36)),
        sa.Column("job_id", sa.String(40)),
        sa.Column("last_error", sa.String(200)),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("tenant_id", sa.String(36), index=True),
        _time("created_at"),
    )
    op.create_table(
        "password_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False, index=True),
        _time("expires_at"),
        _time("used_at", nullable=True),
        _time("created_at"),
    )
    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("user_id", sa.String(36), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        _time("created_at"),
        _time("read_at", nullable=True),
    )
    op.create_table(
        "email_outbox",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("to_addr", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        _time("created_at"),
        _time("sent_at", nullable=True),
    )
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "rate_limits",
        "email_outbox",
        "notifications",
        "password_tokens",
        "users",
        "tenants",
    ):
        op.drop_table(table)
