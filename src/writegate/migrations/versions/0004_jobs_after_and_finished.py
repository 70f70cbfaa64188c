"""jobs: after_id (a job waits for another to be final) and an index for pruning by finished_at

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-03 18:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0004"
down_revision: str | Sequence[str] | None = "core_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FINISHED = sa.text("finished_at IS NOT NULL")


def upgrade() -> None:
    """Apply."""
    op.add_column("jobs", sa.Column("after_id", sa.String(36), nullable=True))
    op.create_index(
        "ix_jobs_finished",
        "jobs",
        ["finished_at"],
        sqlite_where=_FINISHED,
        postgresql_where=_FINISHED,
    )


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_jobs_finished", table_name="jobs")
    op.drop_column("jobs", "after_id")
