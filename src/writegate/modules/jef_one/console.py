"""jef-one in the operator console: sessions, entities and employees by status; job links."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from writegate.core.console_view import Cell, ConsoleView, Link, SimpleConsole, ViewTable
from writegate.core.jobs import Job
from writegate.modules.jef_one.jobs import KIND_EMPLOYEE, KIND_ENTITY, KIND_SESSION, TENANT
from writegate.modules.jef_one.models import Employee, Entity, SessionRecord


def _visible(tenant: str | None) -> bool:
    return tenant is None or tenant == TENANT


def _by_status(s: Session, tenant: str | None) -> ViewTable:
    columns = ["records", "state", "count"]
    if not _visible(tenant):
        return ViewTable(columns, [], f"jef-one rows belong to tenant {TENANT!r}")
    rows: list[list[Cell]] = []
    q = select(SessionRecord.status, func.count()).group_by(SessionRecord.status)
    rows += [["sessions", str(st), int(n)] for st, n in s.execute(q.order_by(SessionRecord.status))]
    for name, model in (("entities", Entity), ("employees", Employee)):
        q2 = select(model.is_active, func.count()).group_by(model.is_active)
        rows += [
            [name, "active" if active else "inactive", int(n)]
            for active, n in s.execute(q2.order_by(model.is_active))
        ]
    return ViewTable(columns, rows, f"sessions not yet final are the active {KIND_SESSION} jobs")


def _links(job: Job) -> list[Link]:
    if job.kind not in (KIND_SESSION, KIND_ENTITY, KIND_EMPLOYEE):
        return []
    out = [Link("jef-one job view", "/jef-one-get-job-by-job-id?" + urlencode({"job_id": job.id}))]
    p = job.payload if isinstance(job.payload, dict) else {}
    if job.kind == KIND_SESSION and isinstance(p.get("session_id"), str):
        query = urlencode({"session_id": p["session_id"]})
        out.append(
            Link(f"session {p['session_id']}", f"/jef-one-get-session-by-session-id?{query}")
        )
    entity = p.get("entity_number")
    if job.kind == KIND_ENTITY and isinstance(entity, str):
        query = urlencode({"entity_number": entity})
        out.append(Link(f"entity {entity}", f"/jef-one-get-entity-by-entity-number?{query}"))
    employee = p.get("employee_number")
    if job.kind == KIND_EMPLOYEE and isinstance(entity, str) and isinstance(employee, str):
        query = urlencode({"entity_number": entity, "employee_number": employee})
        out.append(
            Link(
                f"employee {entity}/{employee}", f"/jef-one-get-employee-by-employee-number?{query}"
            )
        )
    return out


console = SimpleConsole([ConsoleView("jef-one records by status", _by_status)], _links)
