"""ABS in the operator console: packages per client, and the newest entries of the changes feed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from writegate.core.console_view import Cell, ConsoleView, SimpleConsole, ViewTable
from writegate.modules.abs.models import STATE_ACTIVE, AbsClient, AbsPackage

FEED_ROWS = 50


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") + "Z" if at is not None else None


def _clients(s: Session, tenant: str | None) -> ViewTable:
    active = func.sum(case((AbsPackage.state == STATE_ACTIVE, 1), else_=0))
    q = (
        select(
            AbsClient.client_code,
            AbsClient.name,
            func.count(AbsPackage.id),
            active,
            func.max(AbsPackage.version),
            func.max(AbsPackage.modify_date),
        )
        .outerjoin(AbsPackage, AbsPackage.client_code == AbsClient.client_code)
        .group_by(AbsClient.client_code, AbsClient.name)
        .order_by(AbsClient.client_code)
    )
    if tenant is not None:
        q = q.where(AbsClient.client_code == tenant)
    rows: list[list[Cell]] = [
        [code, name, int(n), int(a or 0), v, _iso(at)] for code, name, n, a, v, at in s.execute(q)
    ]
    columns = ["client", "name", "packages", "active", "latest version", "last change"]
    return ViewTable(columns, rows)


def _feed(s: Session, tenant: str | None) -> ViewTable:
    q = select(AbsPackage).order_by(AbsPackage.version.desc()).limit(FEED_ROWS)
    if tenant is not None:
        q = q.where(AbsPackage.client_code == tenant)
    rows: list[list[Cell]] = [
        [
            p.version,
            p.client_code,
            p.id,
            p.uid,
            "active" if p.state == STATE_ACTIVE else "deleted",
            p.processing_status,
            p.modify_user,
            _iso(p.modify_date),
        ]
        for p in s.scalars(q)
    ]
    columns = ["version", "client", "package", "uid", "state", "status", "by", "at"]
    note = (
        f"the newest {FEED_ROWS} entries of the changes feed (getChanges); OAuth tokens not shown"
    )
    return ViewTable(columns, rows, note)


console = SimpleConsole(
    [
        ConsoleView("ABS packages per client", _clients),
        ConsoleView("ABS changes feed", _feed),
    ]
)
