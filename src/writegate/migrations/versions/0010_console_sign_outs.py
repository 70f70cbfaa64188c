"""console: sessions signed out before their cookie expires

Revision ID: core_0010
Revises: core_0009
Create Date: 2026-12-07 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0010"
down_revision: str | Sequence[str] | None = "core_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "console_sign_outs",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_console_sign_outs")),
    )
    op.create_index("ix_console_sign_outs_until", "console_sign_outs", ["until"], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_console_sign_outs_until", table_name="console_sign_outs")
    op.drop_table("console_sign_outs")
