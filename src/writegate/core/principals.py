"""The `principals` table as SQLAlchemy Core declares it, and its writes (no ORM, no argon2).

The ORM's `auth.PrincipalRow` maps onto it. `AuthService` (the server) and `writegate
principals` (a plain connection) create, list and revoke principals through these.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from writegate.core.db.invalues import InValues
from writegate.core.db.metadata import METADATA

if TYPE_CHECKING:
    from argon2 import PasswordHasher
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

KEY_PREFIX = "wg_"

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


_C = PRINCIPALS.c

#: the principal named `name`
BY_NAME = select(PRINCIPALS).where(_C.name == bindparam("name"))
#: the principals of the names `names`
BY_NAMES = select(PRINCIPALS).where(InValues(_C.name, "names"))
#: the principal whose API key hashes to `digest` (what authenticating a request reads)
BY_KEY_HASH = select(
    *(_C[c] for c in ("id", "name", "tenant", "roles", "attrs", "api_key_hash", "revoked_at"))
).where(_C.api_key_hash == bindparam("digest"))


def hash_key(key: str) -> str:
    """SHA-256 of a high-entropy API key (slow hashes are for low-entropy passwords)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    """A fresh API key with 256 bits of entropy."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def password_hasher() -> PasswordHasher:
    """The argon2 hasher of principals' passwords (argon2 is imported here, when first asked)."""
    from argon2 import PasswordHasher

    return PasswordHasher()


def every_principal(conn: Connection | Session) -> Sequence[Row[Any]]:
    """Every principal by name, secrets' columns included (the caller shows only hints)."""
    return conn.execute(select(PRINCIPALS).order_by(_C.name)).all()


def create(
    conn: Connection | Session,
    *,
    name: str,
    tenant: str,
    roles: Sequence[str],
    attrs: dict[str, Any] | None,
    password_hash: str | None,
    now: datetime,
) -> tuple[Row[Any], str]:
    """Insert a principal in the caller's transaction; its row and its API key (shown once).

    A taken name raises the driver's IntegrityError.
    """
    key = new_api_key()
    values = {
        "name": name,
        "tenant": tenant,
        "roles": sorted(set(roles)),
        "attrs": dict(attrs or {}),
        "api_key_hash": hash_key(key),
        "api_key_hint": key[:7],
        "password_hash": password_hash,
        "created_at": now,
    }
    row = conn.execute(insert(PRINCIPALS).values(values).returning(*PRINCIPALS.c)).one()
    return row, key


def revoke(conn: Connection | Session, name: str, now: datetime) -> bool:
    """Revoke a principal's credentials in the caller's transaction; False if unknown or revoked."""
    return _update_active(conn, name, revoked_at=now)


def rotate_key(conn: Connection | Session, name: str) -> str | None:
    """Give an active principal a new API key in the caller's transaction (the old one stops
    working); the key, shown once, or None if the name is unknown or revoked."""
    key = new_api_key()
    changed = _update_active(conn, name, api_key_hash=hash_key(key), api_key_hint=key[:7])
    return key if changed else None


def set_password(conn: Connection | Session, name: str, password_hash: str | None) -> bool:
    """Set (None: remove) an active principal's password in the caller's transaction; False
    if the name is unknown or revoked."""
    return _update_active(conn, name, password_hash=password_hash)


def _update_active(conn: Connection | Session, name: str, **values: Any) -> bool:
    """Set values on the principal `name` unless it is revoked; whether one was."""
    changed = conn.execute(
        update(PRINCIPALS)
        .where(_C.name == name, _C.revoked_at.is_(None))
        .values(**values)
        .returning(_C.id)
    ).first()
    return changed is not None
