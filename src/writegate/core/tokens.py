"""Single-use, expiring process tokens."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Index, Integer, String, Table, bindparam, select, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Mapped, Session, mapped_column

from writegate.core.clock import Clock
from writegate.core.db import Base, BatchInsert, InValues, prepared
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
#: the columns of a new token, as `issue_many` gives them (`id` and `used_at`: the database's)
_ISSUED = ("token_hash", "tenant", "subject", "scope", "purpose", "issued_at", "expires_at")


@functools.cache
def _insert(dialect: Dialect) -> BatchInsert:
    """New tokens: one statement on the driver for a batch's tokens."""
    return BatchInsert(dialect, _TOKENS, _ISSUED, "")


#: the tokens of the digests `digests`
_BY_DIGESTS = select(
    _TOKENS.c.id,
    _TOKENS.c.token_hash,
    _TOKENS.c.tenant,
    _TOKENS.c.subject,
    _TOKENS.c.scope,
    _TOKENS.c.purpose,
    _TOKENS.c.expires_at,
    _TOKENS.c.used_at,
).where(InValues(_TOKENS.c.token_hash, "digests"))
#: use the tokens of ids `ids` that nobody has used; the ids used
_USE = (
    update(_TOKENS)
    .where(InValues(_TOKENS.c.id, "ids"), _TOKENS.c.used_at.is_(None))
    .values(used_at=bindparam("u_now"))
    .returning(_TOKENS.c.id)
)


@dataclass(frozen=True)
class Binding:
    """What a token is bound to: it is good only for the same four values."""

    tenant: str
    subject: str
    scope: str
    purpose: str


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
        binding = Binding(tenant, subject, scope, purpose)
        return self.issue_many(session.connection(), [binding], ttl_seconds)[0]

    def issue_many(
        self, conn: Connection, bindings: list[Binding], ttl_seconds: int | None = None
    ) -> list[IssuedToken]:
        """A token per binding, in the caller's transaction: one INSERT for them all."""
        now = self.clock.now()
        expires = now + timedelta(seconds=ttl_seconds or self.ttl_seconds)
        issued = [IssuedToken(secrets.token_urlsafe(32), expires) for _ in bindings]
        rows = [
            (token_digest(token.value), b.tenant, b.subject, b.scope, b.purpose, now, expires)
            for token, b in zip(issued, bindings, strict=True)
        ]
        _insert(conn.dialect).execute(conn, rows)
        return issued

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
        claim = (digest, Binding(tenant, subject, scope, purpose))
        error = self.consume_digests(session.connection(), [claim])[0]
        if error is not None:
            raise error

    def consume_digests(
        self, conn: Connection, claims: list[tuple[str, Binding]]
    ) -> list[TokenError | None]:
        """Use the token of each (digest, binding) once: None, or why not. Two statements.

        A digest claimed twice is used by its first claim only.
        """
        now = self.clock.now()
        digests = sorted({digest for digest, _ in claims})
        found = prepared(conn.dialect, _BY_DIGESTS).rows(conn, {"digests": digests})
        rows = {r.token_hash: r for r in found}
        errors: list[TokenError | None] = [None] * len(claims)
        claimed: dict[int, int] = {}
        for i, (digest, binding) in enumerate(claims):
            row = rows.get(digest)
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                errors[i] = TokenError("missing")
            elif Binding(row.tenant, row.subject, row.scope, row.purpose) != binding:
                errors[i] = TokenError("mismatch")
            elif row.expires_at <= now:
                errors[i] = TokenError("expired")
            elif row.used_at is not None or row.id in claimed:
                errors[i] = TokenError("used")
            else:
                claimed[row.id] = i
        if claimed:
            # The conditional update is the arbiter: of N racing consumers exactly one matches.
            use = prepared(conn.dialect, _USE)
            used = set(use.scalars(conn, {"ids": list(claimed), "u_now": now}))
            for token_id, i in claimed.items():
                if token_id not in used:
                    errors[i] = TokenError("used")
        return errors

    def purge_expired(self, session: Session, older_than: timedelta = timedelta(days=1)) -> int:
        """Delete tokens expired longer ago than `older_than`."""
        from sqlalchemy import delete

        res = session.execute(
            delete(ProcessTokenRow).where(
                ProcessTokenRow.expires_at < self.clock.now() - older_than
            )
        )
        return int(res.rowcount)  # type: ignore[attr-defined]
