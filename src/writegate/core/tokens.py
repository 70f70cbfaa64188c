"""Single-use, expiring process tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Index, Integer, String, Table, bindparam, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from writegate.core.clock import Clock
from writegate.core.db import Base
from writegate.core.exceptions import TokenError


class ProcessTokenRow(Base):
    """A token: only its hash is stored."""

    __tablename__ = "process_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tenant: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(256))
    scope: Mapped[str] = mapped_column(String(256))
    purpose: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ix_process_tokens_expires_at", "expires_at"),)


_TOKENS: Table = ProcessTokenRow.__table__  # type: ignore[assignment]
#: a new token (Core: no ORM unit of work for a row nobody reads back here)
_INSERT = insert(_TOKENS)
#: the token of a digest, `d_digest`
_BY_DIGEST = select(
    _TOKENS.c.id,
    _TOKENS.c.token_hash,
    _TOKENS.c.tenant,
    _TOKENS.c.subject,
    _TOKENS.c.scope,
    _TOKENS.c.purpose,
    _TOKENS.c.expires_at,
    _TOKENS.c.used_at,
).where(_TOKENS.c.token_hash == bindparam("d_digest"))
#: use token `u_id` if nobody has
_USE = (
    update(_TOKENS)
    .where(_TOKENS.c.id == bindparam("u_id"), _TOKENS.c.used_at.is_(None))
    .values(used_at=bindparam("u_now"))
)


@dataclass(frozen=True)
class IssuedToken:
    """The clear token value, shown to the client once."""

    value: str
    expires_at: datetime


def token_digest(value: str) -> str:
    """SHA-256 (hex) of a token value: what is stored, and what `consume_digest` takes."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class TokenService:
    """Issue and atomically consume single-use tokens bound to (tenant, subject, scope, purpose)."""

    def __init__(self, clock: Clock, ttl_seconds: int = 3600) -> None:
        self.clock = clock
        self.ttl_seconds = ttl_seconds

    def issue(
        self,
        session: Session,
        *,
        tenant: str,
        subject: str,
        scope: str,
        purpose: str,
        ttl_seconds: int | None = None,
    ) -> IssuedToken:
        """Create a token in the caller's transaction (256 bits of entropy)."""
        now = self.clock.now()
        value = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=ttl_seconds or self.ttl_seconds)
        row = {
            "token_hash": token_digest(value),
            "tenant": tenant,
            "subject": subject,
            "scope": scope,
            "purpose": purpose,
            "issued_at": now,
            "expires_at": expires,
        }
        session.connection().execute(_INSERT, row)
        return IssuedToken(value=value, expires_at=expires)

    def consume(
        self,
        session: Session,
        value: str,
        *,
        tenant: str,
        subject: str,
        scope: str,
        purpose: str,
    ) -> None:
        """Use a token once, in the caller's transaction; raise TokenError(reason) otherwise.

        A rollback of the caller's transaction gives the token back, so a failed save
        never burns it. Reasons: ``missing``, ``mismatch``, ``expired``, ``used``.
        """
        self.consume_digest(
            session,
            token_digest(value),
            tenant=tenant,
            subject=subject,
            scope=scope,
            purpose=purpose,
        )

    def consume_digest(
        self,
        session: Session,
        digest: str,
        *,
        tenant: str,
        subject: str,
        scope: str,
        purpose: str,
    ) -> None:
        """`consume` for a caller that keeps only the token's digest, never its value."""
        now = self.clock.now()
        conn = session.connection()
        row = conn.execute(_BY_DIGEST, {"d_digest": digest}).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise TokenError("missing")
        if (row.tenant, row.subject, row.scope, row.purpose) != (tenant, subject, scope, purpose):
            raise TokenError("mismatch")
        if row.expires_at <= now:
            raise TokenError("expired")
        if row.used_at is not None:
            raise TokenError("used")
        # The conditional update is the arbiter: of N racing consumers exactly one matches.
        if conn.execute(_USE, {"u_id": row.id, "u_now": now}).rowcount != 1:
            raise TokenError("used")

    def purge_expired(self, session: Session, older_than: timedelta = timedelta(days=1)) -> int:
        """Delete tokens expired longer ago than `older_than`."""
        from sqlalchemy import delete

        res = session.execute(
            delete(ProcessTokenRow).where(
                ProcessTokenRow.expires_at < self.clock.now() - older_than
            )
        )
        return int(res.rowcount)  # type: ignore[attr-defined]
