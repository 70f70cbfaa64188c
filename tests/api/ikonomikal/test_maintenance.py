"""Housekeeping removes expired process tokens and idle-expired sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from tests.api.ikonomikal.conftest import Iko
from tests.harness import Server
from writegate.modules.ikonomikal.models import ProcTokenRow, SessionRow


def _counts(server: Server, sess_hash_owner: str) -> tuple[int, int]:
    with server.services.db.read() as s:
        sessions = s.scalar(
            select(func.count())
            .select_from(SessionRow)
            .where(SessionRow.principal == sess_hash_owner)
        )
        tokens = s.scalar(
            select(func.count())
            .select_from(ProcTokenRow)
            .join(SessionRow, SessionRow.id == ProcTokenRow.session_id)
            .where(SessionRow.principal == sess_hash_owner)
        )
    return int(sessions or 0), int(tokens or 0)


def test_expired_tokens_and_idle_sessions_are_purged(
    server: Server, iko: Iko, connect: Any, clock: Any
) -> None:
    """After 8 idle hours a session and its tokens are deleted; a live session keeps its own."""
    iko.must_token(1)
    name = iko.user.email
    assert _counts(server, name) == (1, 1)

    clock.advance(timedelta(minutes=61))
    server.run_maintenance()
    assert _counts(server, name) == (1, 0)  # the token expired, the session is still in use

    iko.must_token(1)
    clock.advance(timedelta(hours=8, minutes=1))
    fresh = connect()  # another user, logged in after the first went idle
    fresh.must_token(1)
    done = server.run_maintenance()
    assert done["ikonomikal.expired"] is not None
    assert done["ikonomikal.expired"] >= 2
    assert _counts(server, name) == (0, 0)
    assert _counts(server, fresh.user.email) == (1, 1)
    assert fresh.save(f001="KEPT")["rspPrc"]["rspID"] == 0
