"""jef-one: drop jef_one_verified_job(); the accept writes its session as pending instead

Revision ID: jef_one_0003
Revises: jef_one_0002
Create Date: 2026-12-03 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "jef_one_0003"
down_revision: str | Sequence[str] | None = "jef_one_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: a contract step (docs/deployment.md): the accept of builds before it calls the function
contract = True


def upgrade() -> None:
    """Apply."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS jef_one_verified_job(text)")


def downgrade() -> None:
    """Revert: nothing calls the function any more, so it is not restored."""
