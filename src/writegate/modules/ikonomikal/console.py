"""Ikonomikal in the operator console: live sessions and process tokens (counts, never values)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from writegate.core.clock import Clock
from writegate.core.console_view import Cell, ConsoleView, SimpleConsole, ViewTable
from writegate.modules.ikonomikal.models import ProcTokenRow, SessionRow
from writegate.modules.ikonomikal.settings import IkonomikalSettings


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") + "Z" if at is not None else None


def make_console(clock: Clock, cfg: IkonomikalSettings) -> SimpleConsole:
    """The module's console views, on the module's clock and idle time."""

    def sessions(s: Session, tenant: str | None) -> ViewTable:
        now = clock.now()
        live_after = now - timedelta(seconds=cfg.session_idle_seconds)
        q = (
            select(
                SessionRow.subs_id,
                func.count(),
                func.max(SessionRow.last_used_at),
            )
            .where(SessionRow.last_used_at > live_after)
            .group_by(SessionRow.subs_id)
            .order_by(SessionRow.subs_id)
        )
        if tenant is not None:
            q = q.where(SessionRow.subs_id == tenant)
        tokens = (
            select(
                SessionRow.subs_id,
                func.count(),
                func.min(ProcTokenRow.expires_at),
            )
            .join(SessionRow, SessionRow.id == ProcTokenRow.session_id)
            .where(ProcTokenRow.expires_at > now)
            .group_by(SessionRow.subs_id)
        )
        if tenant is not None:
            tokens = tokens.where(SessionRow.subs_id == tenant)
        live_tokens = {str(sub): (int(n), soonest) for sub, n, soonest in s.execute(tokens)}
        rows: list[list[Cell]] = []
        for sub, n, last in s.execute(q):
            count, soonest = live_tokens.get(str(sub), (0, None))
            rows.append([str(sub), int(n), _iso(last), count, _iso(soonest)])
        columns = [
            "subscription (tenant)",
            "live sessions",
            "last used",
            "live process tokens",
            "next token expiry",
        ]
        note = (
            f"a session is live while used in the last {cfg.session_idle_seconds} s; "
            "token values are never shown"
        )
        return ViewTable(columns, rows, note)

    return SimpleConsole([ConsoleView("Ikonomikal sessions and process tokens", sessions)])
