"""ikonomikal: failed logins are counted in the core's login_failures (scope "ikonomikal")

The counts kept here are dropped, not moved: they are forgotten within minutes anyway, and the
core's keys are digests of other text.

Revision ID: ikonomikal_0005
Revises: ikonomikal_0004
Create Date: 2026-12-07 00:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ikonomikal_0005"
down_revision: str | Sequence[str] | None = "ikonomikal_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "core_0012"
#: a contract step (docs/deployment.md): the login of builds before it reads the table
contract = True


def upgrade() -> None:
    """Apply."""
    op.drop_table("ikonomikal_login_failures")


def downgrade() -> None:
    """Revert (empty, as the counts were not kept)."""
    op.create_table(
        "ikonomikal_login_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ikonomikal_login_failures")),
    )
