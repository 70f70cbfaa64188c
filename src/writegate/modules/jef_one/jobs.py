"""jef-one's job side: its job kinds and their handlers (no web code: workers load this)."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Table, select
from sqlalchemy.engine import Dialect

from writegate.core.db import DriverStatement, InValues
from writegate.core.exceptions import PermanentJobError
from writegate.core.worker import JobContext
from writegate.modules.jef_one.models import Employee, Entity, session_upsert
from writegate.modules.jef_one.schemas import CreateSessionJob, EmployeePost, EntityPost

#: jef-one is a single-tenant backend; every job and row belongs to this tenant
TENANT = "jef-one"
#: this module's name, and its key in services.extras (where its `Accepts` lives)
NAME = "jef_one"

KIND_SESSION = "jef_one.create_session"
KIND_ENTITY = "jef_one.upsert_entity"
KIND_EMPLOYEE = "jef_one.upsert_employee"


_ENTITY: Table = Entity.__table__  # type: ignore[assignment]
_EMPLOYEE: Table = Employee.__table__  # type: ignore[assignment]


@functools.cache
def _reads(dialect: Dialect) -> tuple[DriverStatement, DriverStatement]:
    """(entity_number, is_active) of `entities`; (entity, employee, is_active) of the
    `employees` of those entities. Every verification batch reads both, on its commit
    thread: on the driver."""
    entity = (_ENTITY.c.entity_number, _ENTITY.c.is_active)
    employee = (_EMPLOYEE.c.entity_number, _EMPLOYEE.c.employee_number, _EMPLOYEE.c.is_active)
    entities = select(*entity).where(InValues(_ENTITY.c.entity_number, "entities"))
    employees = select(*employee).where(
        InValues(_EMPLOYEE.c.entity_number, "entities"),
        InValues(_EMPLOYEE.c.employee_number, "employees"),
    )
    return DriverStatement(dialect, entities, entity), DriverStatement(dialect, employees, employee)


Pair = tuple[str, str]


def _refusals(conn: Connection, pairs: set[Pair]) -> dict[Pair, str | None]:
    """Why a session of each (entity, employee) cannot be verified; None where it can."""
    read_entities, read_employees = _reads(conn.dialect)
    entities = sorted({e for e, _ in pairs})
    entity_active = dict(read_entities.fetch(conn, {"entities": entities}))
    params = {"entities": entities, "employees": sorted({m for _, m in pairs})}
    employee_active = {(e, m): a for e, m, a in read_employees.fetch(conn, params)}
    out: dict[Pair, str | None] = {}
    for entity_number, employee_number in pairs:
        entity = entity_active.get(entity_number)
        employee = employee_active.get((entity_number, employee_number))
        if entity is None:
            out[entity_number, employee_number] = f"entity {entity_number} does not exist"
        elif not entity:
            out[entity_number, employee_number] = f"entity {entity_number} is not active"
        elif employee is None:
            out[entity_number, employee_number] = (
                f"employee {employee_number} does not belong to entity {entity_number}"
            )
        elif not employee:
            out[entity_number, employee_number] = (
                f"employee {employee_number} of entity {entity_number} is not active"
            )
        else:
            out[entity_number, employee_number] = None
    return out


def run_create_sessions(ctxs: list[JobContext]) -> list[Any]:
    """Verify (or fail) a batch's accepted sessions: two reads and one upsert for them all.

    Commits with the jobs' success. A session already verified is left as it is.
    """
    s = ctxs[0].session
    s.flush()  # Core statements below: the ORM's pending writes first
    conn = s.connection()
    now = ctxs[0].clock.now()
    bodies: list[CreateSessionJob | Exception] = []
    for ctx in ctxs:
        try:
            bodies.append(CreateSessionJob.model_validate(ctx.payload))
        except ValidationError as exc:
            bodies.append(exc)
    valid = [b for b in bodies if isinstance(b, CreateSessionJob)]
    reasons = _refusals(conn, {(b.entity_number, b.employee_number) for b in valid})
    rows = []
    for ctx, b in zip(ctxs, bodies, strict=True):
        if isinstance(b, CreateSessionJob):
            reason = reasons[b.entity_number, b.employee_number]
            status = "failed" if reason else "verified"
            verified_at = None if reason else now
            body = (b.session_id, b.entity_number, b.employee_number, b.app_type, b.app_number)
            # A new session was created when it was accepted: its job's creation time.
            rows.append((*body, status, reason, ctx.job.id, ctx.job.created_at, now, verified_at))
    written = {row[0] for row in session_upsert(conn.dialect).execute(s, rows)}
    outcomes: list[Any] = []
    for b in bodies:
        if not isinstance(b, CreateSessionJob):
            outcomes.append(b)
            continue
        reason = reasons[b.entity_number, b.employee_number]
        if b.session_id not in written:  # verified before: left as it was
            reason = None
        status = "failed" if reason else "verified"
        outcomes.append({"session_id": b.session_id, "status": status, "failure_reason": reason})
    return outcomes


def run_upsert_entity(ctx: JobContext) -> dict[str, Any]:
    """Create or update an entity."""
    p = EntityPost.model_validate(ctx.payload)
    s = ctx.session
    now = ctx.clock.now()
    row = s.get(Entity, p.entity_number)
    created = row is None
    if row is None:
        row = Entity(entity_number=p.entity_number, created_at=now)
        s.add(row)
    row.entity_name = p.entity_name
    row.is_active = p.is_active
    row.updated_at = now
    return {"entity_number": p.entity_number, "created": created}


def run_upsert_employee(ctx: JobContext) -> dict[str, Any]:
    """Create or update an employee of an existing entity."""
    p = EmployeePost.model_validate(ctx.payload)
    s = ctx.session
    now = ctx.clock.now()
    if s.get(Entity, p.entity_number) is None:
        raise PermanentJobError(f"entity {p.entity_number} does not exist")
    row = s.get(Employee, (p.entity_number, p.employee_number))
    created = row is None
    if row is None:
        row = Employee(
            entity_number=p.entity_number, employee_number=p.employee_number, created_at=now
        )
        s.add(row)
    row.employee_name = p.employee_name
    row.is_active = p.is_active
    row.updated_at = now
    return {
        "entity_number": p.entity_number,
        "employee_number": p.employee_number,
        "created": created,
    }
