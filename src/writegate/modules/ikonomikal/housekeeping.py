"""Ikonomikal's job side: the housekeeping of expired sessions and tokens (workers load this)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select

from writegate.core.services import Services
from writegate.modules.ikonomikal.models import ProcTokenRow, SessionRow
from writegate.modules.ikonomikal.settings import IkonomikalSettings


def purge_expired(services: Services, cfg: IkonomikalSettings) -> int:
    """Delete expired process tokens and idle-expired sessions (with their tokens)."""
    now = services.clock.now()
    idle_before = now - timedelta(seconds=cfg.session_idle_seconds)
    with services.db.write() as s:
        stale = select(SessionRow.id).where(SessionRow.last_used_at <= idle_before)
        tokens = s.execute(
            delete(ProcTokenRow).where(
                (ProcTokenRow.expires_at <= now) | ProcTokenRow.session_id.in_(stale)
            )
        )
        sessions = s.execute(delete(SessionRow).where(SessionRow.last_used_at <= idle_before))
        return int(tokens.rowcount) + int(sessions.rowcount)  # type: ignore[attr-defined]
