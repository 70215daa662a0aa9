"""Provisioning that converges: installation id, database claims, admin e-mail reservations.

- ``installation``: one row, this catalog's id, written into every tenant database it makes
  (the marker that tells our databases from someone else's).
- ``tenant_database_claims``: a tenant database's name, recorded before it is created.
- ``admin_email_reservations``: one tenant per admin e-mail, taken in the transaction that
  creates the tenant. Tenants stored before this revision may share an e-mail: the oldest
  holds the reservation, the others keep their rows (they fail or were repaired by hand).
- ``tenant_repairs``: how many tenants the reconciler repaired, by kind (for /metrics).
- ``email_outbox.claimed_at``: when a run claimed an e-mail to send it (a lease, so two runs
  of one job never both send it).
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003_convergence"
down_revision = "0002_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(installation, [{"id": str(uuid.uuid4()), "created_at": dt.datetime.now(dt.UTC)}])
    op.create_table(
        "tenant_database_claims",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "admin_email_reservations",
        sa.Column("email", sa.String(254), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False, index=True),
    )
    op.execute(
        "INSERT INTO admin_email_reservations (email, tenant_id)"
        " SELECT t.admin_email, MIN(t.id) FROM tenants t"
        " WHERE t.created_at = (SELECT MIN(o.created_at) FROM tenants o"
        "                       WHERE o.admin_email = t.admin_email)"
        " GROUP BY t.admin_email"
    )
    op.add_column("email_outbox", sa.Column("claimed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "tenant_repairs",
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_column("email_outbox", "claimed_at")
    for table in (
        "tenant_repairs",
        "admin_email_reservations",
        "tenant_database_claims",
        "installation",
    ):
        op.drop_table(table)
