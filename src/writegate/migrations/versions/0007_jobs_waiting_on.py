"""jobs: waiting_on (a job parked until its after_id is final) out of the claim's index

Revision ID: core_0007
Revises: core_0006
Create Date: 2026-12-04 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0007"
down_revision: str | Sequence[str] | None = "core_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUED = sa.text("status = 'queued'")
_CLAIMABLE = sa.text("status = 'queued' AND waiting_on IS NULL")
_WAITING = sa.text("waiting_on IS NOT NULL")


def upgrade() -> None:
    """Apply."""
    op.add_column("jobs", sa.Column("waiting_on", sa.String(36), nullable=True))
    op.execute(
        "UPDATE jobs SET waiting_on = after_id WHERE status = 'queued' AND after_id IN"
        " (SELECT id FROM jobs WHERE status IN ('queued', 'running'))"
    )
    op.create_index(
        "ix_jobs_waiting", "jobs", ["waiting_on"], sqlite_where=_WAITING, postgresql_where=_WAITING
    )
    _claim_index(_CLAIMABLE)


def downgrade() -> None:
    """Revert."""
    _claim_index(_QUEUED)
    op.drop_index("ix_jobs_waiting", table_name="jobs")
    op.drop_column("jobs", "waiting_on")


def _claim_index(where: sa.TextClause) -> None:
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index(
        "ix_jobs_claim",
        "jobs",
        ["run_after", "created_at"],
        sqlite_where=where,
        postgresql_where=where,
    )
