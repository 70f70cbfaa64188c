"""jobs: trace_context, the request id and W3C traceparent of the request that enqueued a job

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0005"
down_revision: str | Sequence[str] | None = "core_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.add_column("jobs", sa.Column("trace_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert."""
    op.drop_column("jobs", "trace_context")
