"""Login limits: failed logins per user name and per client address lock them, with backoff.

The counts live in the database (`login_failures`), so every `serve` process sees the same
ones; each login (Ikonomikal's, the console's) counts in a scope of its own, with its own
rules. A user's attempt is counted *before* its password is checked, so N concurrent guesses
cannot all slip in before the first failure is written; a success takes it back and clears
the user's count. An address counts checked failures only.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from writegate.core.auth import PasswordCheckBusy, Principal
from writegate.core.db.base import Base
from writegate.core.services import Services


class LoginFailureRow(Base):
    """Failed logins of one user name or client address (a digest) in one scope."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: whose login: "ikonomikal", "console"
    scope: Mapped[str] = mapped_column(String(50))
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Limited(Exception):
    """The user id or the address is locked for `seconds` more."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"login locked for {seconds} s")
        self.seconds = seconds


@dataclass(frozen=True)
class Rule:
    """When failures lock a key, and for how long."""

    failures: int
    lock: int
    max_lock: int
    forget: int

    def lock_for(self, failures: int) -> int:
        """Seconds of lock after `failures` failures: 0 below the limit, then doubling."""
        if failures < self.failures:
            return 0
        return int(min(self.lock * 2 ** min(failures - self.failures, 30), self.max_lock))


@dataclass(frozen=True)
class Keys:
    """The two counters one login attempt touches."""

    user: str
    address: str


def keys(scope: str, user: str, address: str) -> Keys:
    """Digests of the user name (case-insensitive) and the client address, in a scope."""

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    return Keys(digest(f"{scope}:user:{user.casefold()}"), digest(f"{scope}:addr:{address}"))


#: the operator console's sign-in, with the defaults of Ikonomikal's login
CONSOLE = "console"
CONSOLE_USER = Rule(failures=5, lock=60, max_lock=900, forget=900)
CONSOLE_ADDRESS = Rule(failures=30, lock=60, max_lock=900, forget=60)


class LoginLimits:
    """Admit, count and clear login attempts of one scope, in their own short transactions."""

    def __init__(self, services: Services, scope: str, user: Rule, address: Rule) -> None:
        self.services = services
        self.scope = scope
        self.user = user
        self.address = address

    def admit(self, k: Keys) -> None:
        """Raise Limited while either key is locked; else count the user id's attempt."""
        with self.services.db.write() as s:
            rows = self._rows(s, k)
            now = self.services.clock.now()
            wait = max(_remaining(rows.get(key), now) for key in (k.user, k.address))
            if wait > 0:
                raise Limited(wait)
            self._count(s, rows.get(k.user), k.user, self.user, now)

    def checked(
        self, k: Keys, check: Callable[[], Principal | None], roles: Iterable[str]
    ) -> Principal | None:
        """Admit an attempt, run `check` (the password's), and count the outcome: the
        principal if it checked out and has one of `roles`, else None (a failure).

        Raises Limited while a key is locked, and PasswordCheckBusy, the attempt given back,
        when the password could not be checked. A principal without the role counts and
        answers as a wrong password: naming the role would confirm the password. Call
        `succeeded` in the transaction the login then writes.
        """
        self.admit(k)
        try:
            principal = check()
        except PasswordCheckBusy:
            self.unchecked(k)
            raise
        if principal is None or not principal.has_any(*roles):
            self.failed(k)
            return None
        return principal

    def failed(self, k: Keys) -> None:
        """A checked password was wrong: count it against the address too."""
        with self.services.db.write() as s:
            rows = self._rows(s, k)
            self._count(s, rows.get(k.address), k.address, self.address, self.services.clock.now())

    def succeeded(self, s: Session, k: Keys) -> None:
        """The password was right: the user id's failures are forgotten (in the caller's txn)."""
        # Under the key's lock, as every count: an attempt counted meanwhile would otherwise
        # update the row this deletes (and fail: it matched no row).
        self.services.db.lock(s, f"login.{k.user}")
        s.execute(delete(LoginFailureRow).where(LoginFailureRow.key == k.user))

    def unchecked(self, k: Keys) -> None:
        """The password could not be checked (server busy): give the attempt back."""
        with self.services.db.write() as s:
            row = self._rows(s, k).get(k.user)
            if row is not None and row.failures > 0:
                row.failures -= 1
                if self.user.lock_for(row.failures) == 0:
                    row.locked_until = None

    def purge(self) -> int:
        """Delete counts that are forgotten anyway (housekeeping)."""
        now = self.services.clock.now()
        longest = timedelta(seconds=max(self.user.forget, self.address.forget))
        with self.services.db.write() as s:
            res = s.execute(
                delete(LoginFailureRow).where(
                    LoginFailureRow.scope == self.scope,
                    LoginFailureRow.last_failure_at <= now - longest,
                    (LoginFailureRow.locked_until.is_(None))
                    | (LoginFailureRow.locked_until <= now - longest),
                )
            )
            return int(res.rowcount)  # type: ignore[attr-defined]

    def _rows(self, s: Session, k: Keys) -> dict[str, LoginFailureRow]:
        # Serializes concurrent attempts on a key across processes (SQLite: BEGIN IMMEDIATE);
        # always in the same order, so two attempts never wait on each other's second lock.
        for key in sorted({f"login.{k.user}", f"login.{k.address}"}):
            self.services.db.lock(s, key)
        found = s.scalars(
            select(LoginFailureRow).where(LoginFailureRow.key.in_([k.user, k.address]))
        )
        return {row.key: row for row in found}

    def _count(
        self, s: Session, row: LoginFailureRow | None, key: str, rule: Rule, now: datetime
    ) -> None:
        if row is None:
            row = LoginFailureRow(
                key=key, scope=self.scope, failures=0, last_failure_at=now, locked_until=None
            )
            s.add(row)
        elif now >= _forgotten_at(row, rule):
            row.failures, row.locked_until = 0, None
        row.failures += 1
        row.last_failure_at = now
        seconds = rule.lock_for(row.failures)
        if seconds:
            row.locked_until = now + timedelta(seconds=seconds)


def _forgotten_at(row: LoginFailureRow, rule: Rule) -> datetime:
    """When the row's count resets: `forget` after its last failure or the end of its lock."""
    last = max(row.last_failure_at, row.locked_until or row.last_failure_at)
    return last + timedelta(seconds=rule.forget)


def _remaining(row: LoginFailureRow | None, now: datetime) -> int:
    """Whole seconds the row stays locked (0: not locked)."""
    if row is None or row.locked_until is None or row.locked_until <= now:
        return 0
    return max(1, math.ceil((row.locked_until - now).total_seconds()))


def console(services: Services) -> LoginLimits:
    """The console sign-in's limits."""
    return LoginLimits(services, CONSOLE, CONSOLE_USER, CONSOLE_ADDRESS)
