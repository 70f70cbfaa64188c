"""ikonomikal: failed logins per user id and per client address, for the login limit

Revision ID: ikonomikal_0003
Revises: ikonomikal_0002
Create Date: 2026-12-03 17:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ikonomikal_0003"
down_revision: str | Sequence[str] | None = "ikonomikal_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "ikonomikal_login_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ikonomikal_login_failures")),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("ikonomikal_login_failures")
