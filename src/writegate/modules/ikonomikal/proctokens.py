"""Process tokens: issued per (session, program, procID), consumed by the call they allow."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Connection, Dialect, Table, bindparam, delete, select
from sqlalchemy.orm import Session

from writegate.core.db import BatchInsert, InValues, prepared
from writegate.core.services import Services
from writegate.core.tokens import Binding, token_digest
from writegate.modules.ikonomikal import errors as e
from writegate.modules.ikonomikal.errors import ApiError, Param
from writegate.modules.ikonomikal.models import ProcTokenRow
from writegate.modules.ikonomikal.sessions import Caller


@dataclass(frozen=True)
class Grant:
    """A caller's process on a program: what a token is issued for and consumed by."""

    caller: Caller
    program: str
    proc_id: int

    @property
    def binding(self) -> Binding:
        """The core token's binding: the session's subscriber and id, program, procID."""
        return Binding(
            self.caller.subs_id,
            str(self.caller.session_id),
            self.program,
            f"ikonomikal.proc.{self.proc_id}",
        )


def issue_many(services: Services, conn: Connection, grants: list[Grant]) -> None:
    """A single-use token per grant, bound to the caller's session (their sessions' expired
    tokens dropped): three statements."""
    if not grants:
        return
    now = services.clock.now()
    sessions = sorted({g.caller.session_id for g in grants})
    prepared(conn.dialect, _EXPIRED).execute(conn, {"x_sessions": sessions, "x_now": now})
    tokens = services.tokens.issue_many(conn, [g.binding for g in grants])
    rows = [
        (g.caller.session_id, g.program, g.proc_id, token_digest(t.value), now, t.expires_at)
        for g, t in zip(grants, tokens, strict=True)
    ]
    _insert(conn.dialect).execute(conn, rows)


def consume(services: Services, s: Session, caller: Caller, program: str, proc_id: int) -> None:
    """Use one outstanding token of (session, program, procID) in the caller's transaction."""
    error = consume_many(services, s.connection(), [Grant(caller, program, proc_id)])[0]
    if error is not None:
        raise error


def consume_many(
    services: Services, conn: Connection, grants: list[Grant]
) -> list[ApiError | None]:
    """Use a token per grant, in the caller's transaction: None, or the call's refusal.

    The clients never send the token back: the call names its session, program and
    process, and the oldest live token for them is used (the next one for a second call
    of the same grant). The core's conditional update decides races, so of N calls racing
    for one token exactly one gets it; a rollback of the caller's transaction gives the
    token back.
    """
    if not grants:
        return []
    now = services.clock.now()
    sessions = sorted({g.caller.session_id for g in grants})
    live: dict[tuple[int, str, int], list[tuple[int, str]]] = {}
    for row in prepared(conn.dialect, _LIVE).rows(conn, {"c_sessions": sessions, "c_now": now}):
        live.setdefault((row.session_id, row.program, row.proc_id), []).append(
            (row.id, row.token_hash)
        )
    errors: list[ApiError | None] = [None] * len(grants)
    chosen: dict[int, int] = {}  # grant -> its token's row
    todo = list(range(len(grants)))
    while todo:  # again for the calls whose token a racing call took: their next one
        picks: list[tuple[int, int, str]] = []
        for i in todo:
            g = grants[i]
            candidates = live.get((g.caller.session_id, g.program, g.proc_id))
            if candidates:
                picks.append((i, *candidates.pop(0)))
            else:
                errors[i] = ApiError(e.TOKEN_ERRORS[g.proc_id], Param(g.program, "pPRGM"))
        refused = services.tokens.consume_digests(
            conn, [(digest, grants[i].binding) for i, _, digest in picks]
        )
        todo = []
        for (i, row_id, _), error in zip(picks, refused, strict=True):
            if error is None:
                chosen[i] = row_id
            else:
                todo.append(i)
    if chosen:
        prepared(conn.dialect, _USED).execute(conn, {"u_ids": sorted(chosen.values())})
    return errors


_TOKENS: Table = ProcTokenRow.__table__  # type: ignore[assignment]
#: the columns of a new token, as `issue_many` gives them (`id`: the database's)
_ISSUED = ("session_id", "program", "proc_id", "token_hash", "issued_at", "expires_at")


@functools.cache
def _insert(dialect: Dialect) -> BatchInsert:
    """A batch's new process tokens: one statement on the driver."""
    return BatchInsert(dialect, _TOKENS, _ISSUED, "")


#: the live tokens of the sessions `c_sessions`, oldest first
_LIVE = (
    select(
        _TOKENS.c.id,
        _TOKENS.c.session_id,
        _TOKENS.c.program,
        _TOKENS.c.proc_id,
        _TOKENS.c.token_hash,
    )
    .where(InValues(_TOKENS.c.session_id, "c_sessions"), _TOKENS.c.expires_at > bindparam("c_now"))
    .order_by(_TOKENS.c.id)
)
#: the expired tokens of the sessions `x_sessions`
_EXPIRED = delete(_TOKENS).where(
    InValues(_TOKENS.c.session_id, "x_sessions"), _TOKENS.c.expires_at <= bindparam("x_now")
)
#: forget consumed tokens
_USED = delete(_TOKENS).where(InValues(_TOKENS.c.id, "u_ids"))
