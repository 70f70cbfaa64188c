"""The `principals` table as SQLAlchemy Core declares it, and its listing (no ORM, no argon2).

The ORM's `auth.PrincipalRow` maps onto it; `writegate principals list` reads it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, DateTime, Integer, String, Table, select

from writegate.core.db.metadata import METADATA

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

PRINCIPALS = Table(
    "principals",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("tenant", String(200), nullable=False, index=True),
    Column("roles", JSON, nullable=False),
    Column("attrs", JSON, nullable=False),
    Column("api_key_hash", String(64), unique=True),
    Column("api_key_hint", String(16)),
    Column("password_hash", String(200)),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)


def every_principal(conn: Connection | Session) -> Sequence[Row[Any]]:
    """Every principal by name, secrets' columns included (the caller shows only hints)."""
    return conn.execute(select(PRINCIPALS).order_by(PRINCIPALS.c.name)).all()
