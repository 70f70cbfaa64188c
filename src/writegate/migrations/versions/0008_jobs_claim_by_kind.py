"""jobs: the claim's index by kind first, so a claim reads only its own kinds' due jobs

Revision ID: core_0008
Revises: core_0007
Create Date: 2026-12-05 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0008"
down_revision: str | Sequence[str] | None = "core_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLAIMABLE = sa.text("status = 'queued' AND waiting_on IS NULL")


def upgrade() -> None:
    """Apply."""
    _claim_index(["kind", "run_after", "created_at"])


def downgrade() -> None:
    """Revert."""
    _claim_index(["run_after", "created_at"])


def _claim_index(columns: list[str]) -> None:
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index(
        "ix_jobs_claim", "jobs", columns, sqlite_where=_CLAIMABLE, postgresql_where=_CLAIMABLE
    )
