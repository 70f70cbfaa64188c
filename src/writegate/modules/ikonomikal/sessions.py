"""Login sessions: who is calling, on which subscriber, and what they may do."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from writegate.core.auth import Principal
from writegate.core.db import InValues, prepared
from writegate.core.principals import PRINCIPALS
from writegate.core.services import Services
from writegate.modules.ikonomikal import errors as e
from writegate.modules.ikonomikal.errors import ApiError, Param
from writegate.modules.ikonomikal.models import SessionRow
from writegate.modules.ikonomikal.schemas import ProgramInfo, SessionFields
from writegate.modules.ikonomikal.settings import IkonomikalSettings

#: may log in; every Ikonomikal user holds it
LOGIN_ROLE = "ikonomikal"
#: every process of every subscribed program
ADMIN_ROLE = "ikonomikal:admin"
#: role suffix per procID: ikonomikal:<program>:<suffix>, or ikonomikal:<program> for all
PROC_ROLES = {0: "save", 1: "add", 2: "delete", 3: "data"}
#: programs a user's subscription covers when the `programs` attribute is absent
DEFAULT_PROGRAMS = ("SS07",)
_GID_NAMESPACE = uuid.UUID("0b3d6f4e-4a59-4c52-9d8e-1f0a6c2b7e11")
_MODULE_OF = re.compile(r"[A-Z]+")


def hash_session_id(sess_id: str) -> str:
    """SHA-256 of a session id, so the table never holds a usable credential."""
    return hashlib.sha256(sess_id.strip().upper().encode("utf-8", "surrogatepass")).hexdigest()


def int_gid(principal: Principal) -> str:
    """The user's Ikonomikal id: the `int_gid` attribute, else a stable id derived from them."""
    given = str(principal.attrs.get("int_gid") or "").strip()
    if given:
        return given.upper()
    return str(uuid.uuid5(_GID_NAMESPACE, f"{principal.id}:{principal.name}")).upper()


@dataclass(frozen=True)
class Caller:
    """A validated session: the user, their subscriber and their save stamp."""

    session_id: int
    subs_id: str
    principal: Principal

    @property
    def user_code(self) -> str:
        """mUser of the user's saves."""
        return str(self.principal.attrs.get("user_code") or self.principal.name)

    @property
    def group(self) -> str:
        """mGroup of the user's saves."""
        return str(self.principal.attrs.get("group") or "")

    @property
    def programs(self) -> frozenset[str]:
        """Program codes the user's subscription covers."""
        raw = self.principal.attrs.get("programs")
        if raw is None:
            return frozenset(DEFAULT_PROGRAMS)
        return frozenset(p.strip().upper() for p in str(raw).split(",") if p.strip())

    def authorize(self, program: str, proc_id: int) -> None:
        """Raise 1000101 unless a role grants procID on program."""
        base = f"{LOGIN_ROLE}:{program.lower()}"
        if not self.principal.has_any(ADMIN_ROLE, base, f"{base}:{PROC_ROLES[proc_id]}"):
            raise ApiError(
                e.NOT_AUTHORIZED,
                Param(self.principal.name, "userID"),
                Param(f"{program} {e.PROCESS_NAMES[proc_id]}", "procID"),
            )

    def program(self, info: ProgramInfo, only: str | None = None) -> str:
        """The program code asked for, checked against the subscription (and the endpoint)."""
        code = info.pPRGM.strip().upper()
        if not code:
            raise ApiError(e.BLANK, Param("Program", "pPRGM"))
        if only is not None and code != only:
            raise ApiError(e.WRONG_PROGRAM, Param(code, "pPRGM"), only)
        module = info.pMODL.strip().upper()
        match = _MODULE_OF.match(code)
        if code not in self.programs or (module and module != (match[0] if match else code)):
            raise ApiError(e.NOT_SUBSCRIBED, Param(code, "pPRGM"))
        return code


def user_name(principal: Principal) -> str:
    """userName of the login answer."""
    return str(
        principal.attrs.get("user_name") or principal.attrs.get("user_code") or principal.name
    )


def subscriber_exists(conn: Connection, subs_id: str) -> bool:
    """A subscriber exists while an active Ikonomikal user belongs to it."""
    rows = conn.execute(_ROLES_OF_TENANT, {"r_tenant": subs_id}).scalars()
    return any(LOGIN_ROLE in (roles or ()) for roles in rows)


def open_session(
    services: Services, cfg: IkonomikalSettings, s: Session, principal: Principal
) -> str:
    """Create a session for principal and return its sessID (shown once)."""
    now = services.clock.now()
    s.execute(
        delete(SessionRow).where(
            SessionRow.principal == principal.name,
            SessionRow.last_used_at <= now - timedelta(seconds=cfg.session_idle_seconds),
        )
    )
    sess_id = str(uuid.uuid4()).upper()
    s.add(
        SessionRow(
            sess_hash=hash_session_id(sess_id),
            subs_id=principal.tenant,
            principal=principal.name,
            int_gid=int_gid(principal),
            created_at=now,
            last_used_at=now,
        )
    )
    s.flush()
    return sess_id


def authenticate(
    services: Services, cfg: IkonomikalSettings, s: Session, req: SessionFields
) -> Caller:
    """Check the session fields of a request and refresh the session's idle timer."""
    caller = authenticate_many(services, cfg, s.connection(), [req])[0]
    if isinstance(caller, ApiError):
        raise caller
    return caller


def authenticate_many(
    services: Services, cfg: IkonomikalSettings, conn: Connection, reqs: Sequence[SessionFields]
) -> list[Caller | ApiError]:
    """`authenticate` for a batch of requests: two reads, and one UPDATE for the touches due."""
    now = services.clock.now()
    keys = [hash_session_id(r.sessID) if r.sessID.strip() else None for r in reqs]
    digests = sorted({k for k in keys if k is not None})
    found = prepared(conn.dialect, _BY_HASHES).rows(conn, {"hashes": digests}) if digests else []
    rows = {r.sess_hash: r for r in found}
    principals = services.auth.by_names(conn, sorted({r.principal for r in rows.values()}))
    callers: list[Caller | ApiError] = []
    touch: set[int] = set()
    for req, key in zip(reqs, keys, strict=True):
        try:
            row = rows.get(key) if key is not None else None
            callers.append(_caller(conn, cfg, now, req, row, principals))
        except ApiError as exc:
            callers.append(exc)
            continue
        if row is not None and _idle(now, row.last_used_at) >= cfg.session_touch_seconds:
            touch.add(row.id)
    if touch:
        prepared(conn.dialect, _TOUCH).execute(conn, {"t_ids": sorted(touch), "t_now": now})
    return callers


def _caller(
    conn: Connection,
    cfg: IkonomikalSettings,
    now: datetime,
    req: SessionFields,
    row: Any,
    principals: dict[str, Principal],
) -> Caller:
    if row is None or _idle(now, row.last_used_at) >= cfg.session_idle_seconds:
        raise ApiError(e.NO_SESSION)
    principal = principals.get(row.principal)
    if (
        principal is None
        or principal.tenant != row.subs_id
        or not principal.has_any(LOGIN_ROLE)
        or req.userID.strip().casefold() != row.principal.casefold()
        or req.intGID.strip().upper() != row.int_gid.upper()
    ):
        raise ApiError(e.NO_SESSION)
    subs_id = req.subsID.strip()
    if subs_id != row.subs_id:
        if not subs_id:
            raise ApiError(e.BLANK, Param("Subscriber", "subsID"))
        if not subscriber_exists(conn, subs_id):
            raise ApiError(e.NO_SUBSCRIBER, Param(subs_id, "subsID"))
        raise ApiError(e.WRONG_SUBSCRIBER, Param(subs_id, "subsID"))
    return Caller(session_id=row.id, subs_id=row.subs_id, principal=principal)


_SESSIONS: Table = SessionRow.__table__  # type: ignore[assignment]
#: the sessions whose sessIDs have the digests `hashes`
_BY_HASHES = select(
    _SESSIONS.c.sess_hash,
    _SESSIONS.c.id,
    _SESSIONS.c.subs_id,
    _SESSIONS.c.principal,
    _SESSIONS.c.int_gid,
    _SESSIONS.c.last_used_at,
).where(InValues(_SESSIONS.c.sess_hash, "hashes"))
_TOUCHED = _SESSIONS.alias("touched")
#: refresh the idle timers of the sessions `t_ids`. A session another transaction holds is
#: being refreshed by it: skipped, not waited for (batches refreshing sessions in different
#: orders deadlocked on PostgreSQL; SQLite has no row locks and renders no FOR UPDATE)
_TOUCH = (
    update(_SESSIONS)
    .where(
        _SESSIONS.c.id.in_(
            select(_TOUCHED.c.id)
            .where(InValues(_TOUCHED.c.id, "t_ids"), _TOUCHED.c.last_used_at < bindparam("t_now"))
            .order_by(_TOUCHED.c.id)
            .with_for_update(skip_locked=True)
        )
    )
    .values(last_used_at=bindparam("t_now"))
)


#: the roles of tenant `r_tenant`'s active principals
_ROLES_OF_TENANT = select(PRINCIPALS.c.roles).where(
    PRINCIPALS.c.tenant == bindparam("r_tenant"), PRINCIPALS.c.revoked_at.is_(None)
)


def _idle(now: datetime, last: datetime) -> float:
    return (now - last).total_seconds()
