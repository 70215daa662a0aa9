"""Account recovery and linked notifications.

- ``password_tokens.purpose``: ``welcome`` (72-hour set-password link) or ``reset`` (the
  1-hour link of "Forgot password?"); tokens stored before this revision are welcome links.
- ``notifications.link``: the app page a notification is about (a tenant's), if any.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_account_recovery"
down_revision = "0003_convergence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "password_tokens",
        sa.Column("purpose", sa.String(20), nullable=False, server_default="welcome"),
    )
    op.add_column("notifications", sa.Column("link", sa.String(200)))


def downgrade() -> None:
    op.drop_column("notifications", "link")
    op.drop_column("password_tokens", "purpose")
