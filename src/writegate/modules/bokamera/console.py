"""BokaMera in the operator console: each company's latest sync with its progress; Vaka settings."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from writegate.core.console_view import Cell, ConsoleView, Link, Progress, SimpleConsole, ViewTable
from writegate.core.jobs import Job, JobRow
from writegate.modules.bokamera.handlers import SYNC_KIND
from writegate.modules.bokamera.models import AxemaSettingsRow, UserSyncRow


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") + "Z" if at is not None else None


def _syncs(s: Session, tenant: str | None) -> ViewTable:
    latest = select(UserSyncRow.company_id, func.max(UserSyncRow.created_at).label("at")).group_by(
        UserSyncRow.company_id
    )
    if tenant is not None:
        latest = latest.where(UserSyncRow.tenant == tenant)
    sub = latest.subquery()
    q = (
        select(UserSyncRow, JobRow)
        .join(
            sub, (sub.c.company_id == UserSyncRow.company_id) & (sub.c.at == UserSyncRow.created_at)
        )
        .join(JobRow, JobRow.id == UserSyncRow.id)
        .order_by(UserSyncRow.company_id)
    )
    rows: list[list[Cell]] = []
    for sync, job in s.execute(q):
        p = job.progress if isinstance(job.progress, dict) else {}
        found = int(p.get("found") or 0)
        created, updated = int(p.get("created") or 0), int(p.get("updated") or 0)
        failed = int(p.get("failed") or 0)
        label = f"found {found}, created {created}, updated {updated}, failed {failed}"
        rows.append(
            [
                sync.company_id,
                Link(job.id, f"/console/jobs/{job.id}"),
                job.status,
                Progress(
                    created + updated + failed, found if job.status == "succeeded" else None, label
                ),
                _iso(sync.created_at),
                _iso(job.finished_at),
            ]
        )
    columns = ["company", "latest sync", "status", "users", "started", "finished"]
    note = "while a sync runs, Vaka's total is not known: the bar counts users handled so far"
    return ViewTable(columns, rows, note)


def _settings(s: Session, tenant: str | None) -> ViewTable:
    q = select(AxemaSettingsRow).order_by(AxemaSettingsRow.company_id)
    if tenant is not None:
        q = q.where(AxemaSettingsRow.tenant == tenant)
    rows: list[list[Cell]] = [
        [r.company_id, r.api_endpoint, r.api_port, r.username, "***", _iso(r.updated_at)]
        for r in s.scalars(q)
    ]
    columns = ["company", "Vaka endpoint", "port", "username", "password", "updated"]
    return ViewTable(columns, rows, "the Vaka password is stored encrypted and never shown")


def _links(job: Job) -> list[Link]:
    if job.kind != SYNC_KIND:
        return []
    return [Link(f"sync {job.id} (API view)", f"/codelock/axema/usersync/{quote(job.id)}")]


console = SimpleConsole(
    [
        ConsoleView("BokaMera syncs per company", _syncs),
        ConsoleView("BokaMera Vaka settings", _settings),
    ],
    _links,
)
