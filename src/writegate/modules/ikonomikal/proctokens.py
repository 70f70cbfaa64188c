"""Process tokens: issued per (session, program, procID), consumed by the call they allow."""

from __future__ import annotations

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.orm import Session

from writegate.core.exceptions import TokenError
from writegate.core.services import Services
from writegate.core.tokens import token_digest
from writegate.modules.ikonomikal import errors as e
from writegate.modules.ikonomikal.errors import ApiError, Param
from writegate.modules.ikonomikal.models import ProcTokenRow
from writegate.modules.ikonomikal.sessions import Caller


def _purpose(proc_id: int) -> str:
    return f"ikonomikal.proc.{proc_id}"


def issue(services: Services, s: Session, caller: Caller, program: str, proc_id: int) -> None:
    """Issue a single-use token for procID on program, bound to the caller's session."""
    now = services.clock.now()
    s.connection().execute(_EXPIRED, {"x_session": caller.session_id, "x_now": now})
    token = services.tokens.issue(
        s,
        tenant=caller.subs_id,
        subject=str(caller.session_id),
        scope=program,
        purpose=_purpose(proc_id),
    )
    s.add(
        ProcTokenRow(
            session_id=caller.session_id,
            program=program,
            proc_id=proc_id,
            token_hash=token_digest(token.value),
            issued_at=now,
            expires_at=token.expires_at,
        )
    )


def consume(services: Services, s: Session, caller: Caller, program: str, proc_id: int) -> None:
    """Use one outstanding token of (session, program, procID) in the caller's transaction.

    The clients never send the token back: the call names its session, program and
    process, and the oldest live token for them is used. The core's conditional update
    decides races, so of N calls racing for one token exactly one gets it; a rollback
    of the caller's transaction gives the token back.
    """
    now = services.clock.now()
    conn = s.connection()
    params = {"c_session": caller.session_id, "c_program": program, "c_proc": proc_id}
    candidates = conn.execute(_LIVE, {**params, "c_now": now}).all()
    for row in candidates:
        try:
            services.tokens.consume_digest(
                s,
                row.token_hash,
                tenant=caller.subs_id,
                subject=str(caller.session_id),
                scope=program,
                purpose=_purpose(proc_id),
            )
        except TokenError:
            continue  # a racing call took it (or it just expired): try the next one
        conn.execute(_USED, {"u_id": row.id})
        return
    raise ApiError(e.TOKEN_ERRORS[proc_id], Param(program, "pPRGM"))


_TOKENS: Table = ProcTokenRow.__table__  # type: ignore[assignment]
#: a session's live tokens for one program and procID, oldest first
_LIVE = (
    select(_TOKENS.c.id, _TOKENS.c.token_hash)
    .where(
        _TOKENS.c.session_id == bindparam("c_session"),
        _TOKENS.c.program == bindparam("c_program"),
        _TOKENS.c.proc_id == bindparam("c_proc"),
        _TOKENS.c.expires_at > bindparam("c_now"),
    )
    .order_by(_TOKENS.c.id)
)
#: a session's expired tokens
_EXPIRED = delete(_TOKENS).where(
    _TOKENS.c.session_id == bindparam("x_session"), _TOKENS.c.expires_at <= bindparam("x_now")
)
#: forget a consumed token
_USED = delete(_TOKENS).where(_TOKENS.c.id == bindparam("u_id"))
