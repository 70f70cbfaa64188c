"""Principals: hashed API keys and passwords, roles and tenant scope."""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Row
from sqlalchemy.orm import Mapped, Session

from writegate.core import principals
from writegate.core.clock import Clock
from writegate.core.db import Base, Database, after_commit, prepared
from writegate.core.principals import (
    BY_KEY_HASH,
    BY_NAME,
    BY_NAMES,
    PRINCIPALS,
    hash_key,
    password_hasher,
)

#: Roles that see every tenant; nothing else crosses a tenant boundary.
ALL_TENANTS_ROLES = frozenset({"superadmin"})

#: argon2 computations run at once per process. Each holds memory_cost (64 MiB) while it
#: runs, and more of them than CPUs only share the CPUs: 32 concurrent logins took 1.9 GB
#: of RSS for no more logins per second. Waiting here depends on load, never on the name.
_HASH_SLOTS_N = max(1, os.cpu_count() or 1)
_HASH_SLOTS = threading.BoundedSemaphore(_HASH_SLOTS_N)
#: a password check waits at most this long for a slot, and only while fewer than
#: HASH_QUEUE checks wait: a login flood then gets quick refusals (PasswordCheckBusy)
#: instead of a queue that holds every server thread for as long as it lasts
HASH_WAIT_SECONDS = 5.0
HASH_QUEUE = 8 * _HASH_SLOTS_N


class _Queue:
    """How many password checks wait for a slot."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = 0


_QUEUE = _Queue()


class PasswordCheckBusy(Exception):
    """Every argon2 slot stayed taken for the whole wait: the check was not made."""


class PrincipalRow(Base):
    """A user or client of writegate (the ORM's view of `principals.PRINCIPALS`)."""

    __table__ = PRINCIPALS

    id: Mapped[int]
    name: Mapped[str]
    tenant: Mapped[str]
    roles: Mapped[list[str]]
    attrs: Mapped[dict[str, Any]]
    api_key_hash: Mapped[str | None]
    api_key_hint: Mapped[str | None]
    password_hash: Mapped[str | None]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    id: int
    name: str
    tenant: str
    roles: frozenset[str]
    attrs: dict[str, Any] = field(default_factory=dict, compare=False)

    def has_any(self, *roles: str) -> bool:
        """True if the principal holds at least one of roles."""
        return bool(self.roles.intersection(roles))

    @property
    def all_tenants(self) -> bool:
        """True for an explicit all-tenants role."""
        return bool(self.roles & ALL_TENANTS_ROLES)

    def can_access(self, tenant: str) -> bool:
        """True if this principal may see tenant's jobs and records."""
        return self.all_tenants or tenant == self.tenant

    @classmethod
    def from_row(cls, row: PrincipalRow | Row[Any]) -> Principal:
        """Build from a row (ORM or Core)."""
        return cls(row.id, row.name, row.tenant, frozenset(row.roles), dict(row.attrs or {}))


class AuthService:
    """Create, find, verify and revoke principals."""

    def __init__(
        self, db: Database, clock: Clock, on_revoke: Callable[[], None] | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        #: called once a revocation is committed (the principals cache forgets)
        self.on_revoke = on_revoke or (lambda: None)
        self._hasher = password_hasher()
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()
        self.hash_wait_seconds = HASH_WAIT_SECONDS

    def _dummy(self) -> str:
        # Made on first use, not at start-up: one argon2 hash briefly takes memory_cost
        # (64 MiB) of RAM, and most processes (workers, serve without logins) never need it.
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self._hash(secrets.token_hex(16))
            return self._dummy_hash

    def _hash(self, password: str) -> str:
        with _HASH_SLOTS:
            return self._hasher.hash(password)

    def create(
        self,
        session: Session,
        *,
        name: str,
        tenant: str,
        roles: list[str],
        password: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> tuple[Principal, str]:
        """Create a principal; return it with its API key (shown only once)."""
        row, key = principals.create(
            session,
            name=name,
            tenant=tenant,
            roles=roles,
            attrs=attrs,
            password_hash=self._hash(password) if password else None,
            now=self.clock.now(),
        )
        return Principal.from_row(row), key

    def by_api_key(self, session: Session, key: str) -> Principal | None:
        """The active principal holding key, if any."""
        if not key or len(key) > 200:
            return None
        digest = hash_key(key)
        row = session.connection().execute(BY_KEY_HASH, {"digest": digest}).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.api_key_hash or "", digest):
            return None
        return Principal.from_row(row)

    async def by_api_key_read(self, key: str) -> Principal | None:
        """`by_api_key` on the async read path (`db.reads`): no session, no thread."""
        if not key or len(key) > 200:
            return None
        digest = hash_key(key)
        row = await self.db.reads.first(BY_KEY_HASH, {"digest": digest})
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.api_key_hash or "", digest):
            return None
        return Principal.from_row(row)

    def by_name(self, session: Session, name: str) -> Principal | None:
        """The active principal of that name."""
        row = session.connection().execute(BY_NAME, {"name": name}).first()
        if row is None or row.revoked_at is not None:
            return None
        return Principal.from_row(row)

    def by_names(self, conn: Connection, names: list[str]) -> dict[str, Principal]:
        """The active principals of these names, by name: one read."""
        if not names:
            return {}
        rows = prepared(conn.dialect, BY_NAMES).rows(conn, {"names": names})
        return {r.name: Principal.from_row(r) for r in rows if r.revoked_at is None}

    def verify_password(self, session: Session, name: str, password: str) -> Principal | None:
        """The principal if name and password match; same cost either way.

        Raises PasswordCheckBusy when no hash slot frees up within `hash_wait_seconds`.
        """
        # Before the lookup, so the first call costs the same whether or not name exists.
        dummy = self._dummy()
        return self._verified(self._password_of(session, name), dummy, password)

    def check_password(self, name: str, password: str) -> Principal | None:
        """`verify_password` with its own read transaction, ended before the slow hash.

        A login waiting for a hash slot then holds no database connection.
        """
        dummy = self._dummy()
        with self.db.read() as session:
            found = self._password_of(session, name)
        return self._verified(found, dummy, password)

    def _slot(self) -> bool:
        """Take a hash slot: now, or after a bounded wait in a bounded queue."""
        if _HASH_SLOTS.acquire(blocking=False):
            return True
        with _QUEUE.lock:
            if _QUEUE.waiting >= HASH_QUEUE:
                return False
            _QUEUE.waiting += 1
        try:
            return _HASH_SLOTS.acquire(timeout=self.hash_wait_seconds)
        finally:
            with _QUEUE.lock:
                _QUEUE.waiting -= 1

    @staticmethod
    def _password_of(session: Session, name: str) -> tuple[Principal, str] | None:
        row = session.connection().execute(BY_NAME, {"name": name}).first()
        if row is None or row.revoked_at is not None or row.password_hash is None:
            return None
        return Principal.from_row(row), row.password_hash

    def _verified(
        self, found: tuple[Principal, str] | None, dummy: str, password: str
    ) -> Principal | None:
        if not self._slot():
            raise PasswordCheckBusy
        try:
            self._hasher.verify(found[1] if found else dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        finally:
            _HASH_SLOTS.release()
        return found[0] if found else None

    def revoke(self, session: Session, name: str) -> bool:
        """Revoke a principal's credentials; False if unknown or already revoked."""
        if not principals.revoke(session, name, self.clock.now()):
            return False
        after_commit(session, self.on_revoke)
        return True
