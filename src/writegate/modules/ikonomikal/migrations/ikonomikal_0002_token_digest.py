"""ikonomikal: keep only the SHA-256 of each outstanding process token, never the token

Revision ID: ikonomikal_0002
Revises: ikonomikal_0001
Create Date: 2026-12-03 17:40:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ikonomikal_0002"
down_revision: str | Sequence[str] | None = "ikonomikal_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: a contract step (docs/deployment.md): builds before it write the token in clear
contract = True

_TOKENS = sa.table(
    "ikonomikal_proc_tokens",
    sa.column("id", sa.Integer()),
    sa.column("token", sa.String(64)),
    sa.column("token_hash", sa.String(64)),
)


def upgrade() -> None:
    """Apply: add token_hash, hash every live token into it, drop the clear column."""
    with op.batch_alter_table("ikonomikal_proc_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    # The same digest as the core's token_digest (written out: a migration never changes).
    for row in conn.execute(sa.select(_TOKENS.c.id, _TOKENS.c.token)).all():
        digest = hashlib.sha256(row.token.encode("utf-8", "surrogatepass")).hexdigest()
        conn.execute(_TOKENS.update().where(_TOKENS.c.id == row.id).values(token_hash=digest))
    with op.batch_alter_table("ikonomikal_proc_tokens", schema=None) as batch_op:
        batch_op.alter_column("token_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("token")


def downgrade() -> None:
    """Revert: a digest cannot give the token back, so outstanding tokens are dropped."""
    op.execute("DELETE FROM ikonomikal_proc_tokens")
    with op.batch_alter_table("ikonomikal_proc_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token", sa.String(length=64), nullable=False))
        batch_op.drop_column("token_hash")
