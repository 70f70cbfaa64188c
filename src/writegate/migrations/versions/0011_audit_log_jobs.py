"""console: each job an audit entry names, indexed, so a job's entries are found by its id

Revision ID: core_0011
Revises: core_0010
Create Date: 2026-12-07 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0011"
down_revision: str | Sequence[str] | None = "core_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENTRIES = sa.table("audit_log", sa.column("id", sa.Integer()), sa.column("job_ids", sa.JSON()))
_NAMED = sa.table(
    "audit_log_jobs", sa.column("entry_id", sa.Integer()), sa.column("job_id", sa.String(36))
)


def upgrade() -> None:
    """Apply: the table, filled from every entry's job_ids."""
    op.create_table(
        "audit_log_jobs",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["audit_log.id"], name=op.f("fk_audit_log_jobs_entry_id_audit_log")
        ),
        sa.PrimaryKeyConstraint("entry_id", "job_id", name=op.f("pk_audit_log_jobs")),
    )
    op.create_index("ix_audit_log_jobs_job_id", "audit_log_jobs", ["job_id"], unique=False)
    conn = op.get_bind()
    rows = [
        {"entry_id": entry_id, "job_id": job_id}
        for entry_id, job_ids in conn.execute(sa.select(_ENTRIES.c.id, _ENTRIES.c.job_ids))
        for job_id in dict.fromkeys(job_ids or [])
    ]
    if rows:
        conn.execute(_NAMED.insert(), rows)


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_audit_log_jobs_job_id", table_name="audit_log_jobs")
    op.drop_table("audit_log_jobs")
