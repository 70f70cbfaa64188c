"""jobs: the idempotency index holds only jobs that have a key

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-23 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0003"
down_revision: str | Sequence[str] | None = "core_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYED = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    """Apply: a job without an idempotency key no longer writes an index entry."""
    op.drop_index("uq_jobs_idempotency", table_name="jobs")
    op.create_index(
        "uq_jobs_idempotency",
        "jobs",
        ["tenant", "kind", "idempotency_key"],
        unique=True,
        sqlite_where=_KEYED,
        postgresql_where=_KEYED,
    )


def downgrade() -> None:
    """Revert."""
    op.drop_index("uq_jobs_idempotency", table_name="jobs")
    op.create_index(
        "uq_jobs_idempotency", "jobs", ["tenant", "kind", "idempotency_key"], unique=True
    )
