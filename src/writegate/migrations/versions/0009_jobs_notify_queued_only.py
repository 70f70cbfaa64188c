"""jobs: NOTIFY only for an INSERT that queued a job (PostgreSQL)

A job handed to the worker of the process that writes it is inserted running: no other
worker can take it, so its INSERT wakes none of them.

Revision ID: core_0009
Revises: core_0008
Create Date: 2026-12-05 21:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "core_0009"
down_revision: str | Sequence[str] | None = "core_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply: the statement trigger reads the rows it inserted (a transition table)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION writegate_jobs_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM inserted WHERE status = 'queued') THEN
                PERFORM pg_notify('writegate_jobs', '');
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute("DROP TRIGGER jobs_notify ON jobs")
    op.execute(
        "CREATE TRIGGER jobs_notify AFTER INSERT ON jobs REFERENCING NEW TABLE AS inserted "
        "FOR EACH STATEMENT EXECUTE FUNCTION writegate_jobs_notify()"
    )


def downgrade() -> None:
    """Revert: one NOTIFY per INSERT statement."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER jobs_notify ON jobs")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION writegate_jobs_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('writegate_jobs', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER jobs_notify AFTER INSERT ON jobs "
        "FOR EACH STATEMENT EXECUTE FUNCTION writegate_jobs_notify()"
    )
