"""ikonomikal: an SS07 code's key holds its capitals (up to three characters a letter)

Revision ID: ikonomikal_0004
Revises: ikonomikal_0003
Create Date: 2026-12-07 00:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ikonomikal_0004"
down_revision: str | Sequence[str] | None = "ikonomikal_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply: code_key VARCHAR(20) -> VARCHAR(60), as "ß" upper-cases to "SS" and "ﬃ" to "FFI"."""
    with op.batch_alter_table("ikonomikal_ss07", schema=None) as batch_op:
        batch_op.alter_column(
            "code_key", existing_type=sa.String(length=20), type_=sa.String(length=60)
        )


def downgrade() -> None:
    """Revert (PostgreSQL refuses it while a key is longer than 20 characters)."""
    with op.batch_alter_table("ikonomikal_ss07", schema=None) as batch_op:
        batch_op.alter_column(
            "code_key", existing_type=sa.String(length=60), type_=sa.String(length=20)
        )
