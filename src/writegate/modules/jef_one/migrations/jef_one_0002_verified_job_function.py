"""jef-one: jef_one_verified_job(), the session accept's lookup inside its INSERT (PostgreSQL)

Revision ID: jef_one_0002
Revises: jef_one_0001
Create Date: 2026-11-24 11:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "jef_one_0002"
down_revision: str | Sequence[str] | None = "jef_one_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply: the job id of a verified session, read with a snapshot of its own."""
    if op.get_bind().dialect.name != "postgresql":
        return
    # VOLATILE, so its SELECT takes a fresh snapshot even when called from the RETURNING of
    # an INSERT that waited for another transaction: it sees what that one committed.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION jef_one_verified_job(sid text) RETURNS text
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            found text;
        BEGIN
            SELECT job_id INTO found FROM "jef-one-sessions"
            WHERE session_id = sid AND status = 'verified';
            RETURN found;
        END $$
        """
    )


def downgrade() -> None:
    """Revert."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS jef_one_verified_job(text)")
