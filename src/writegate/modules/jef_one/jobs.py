"""jef-one's job side: its job kinds and their handlers (no web code: workers load this)."""

from __future__ import annotations

from typing import Any

from writegate.core.exceptions import PermanentJobError
from writegate.core.worker import JobContext
from writegate.modules.jef_one.models import Employee, Entity, SessionRecord
from writegate.modules.jef_one.schemas import CreateSessionJob, EmployeePost, EntityPost

#: jef-one is a single-tenant backend; every job and row belongs to this tenant
TENANT = "jef-one"
#: this module's name, and its key in services.extras (where its `Accepts` lives)
NAME = "jef_one"

KIND_SESSION = "jef_one.create_session"
KIND_ENTITY = "jef_one.upsert_entity"
KIND_EMPLOYEE = "jef_one.upsert_employee"


def _refusal(s: Any, entity_number: str, employee_number: str) -> str | None:
    entity = s.get(Entity, entity_number)
    if entity is None:
        return f"entity {entity_number} does not exist"
    if not entity.is_active:
        return f"entity {entity_number} is not active"
    employee = s.get(Employee, (entity_number, employee_number))
    if employee is None:
        return f"employee {employee_number} does not belong to entity {entity_number}"
    if not employee.is_active:
        return f"employee {employee_number} of entity {entity_number} is not active"
    return None


def run_create_session(ctx: JobContext) -> dict[str, Any]:
    """Verify (or fail) the pending session; commits with the job's success."""
    p = CreateSessionJob.model_validate(ctx.payload)
    s = ctx.session
    now = ctx.clock.now()
    row = s.get(SessionRecord, p.session_id)
    if row is not None and row.status == "verified":
        return {"session_id": p.session_id, "status": "verified", "failure_reason": None}
    reason = _refusal(s, p.entity_number, p.employee_number)
    if row is None:  # accepted before sessions were written as pending at accept time
        row = SessionRecord(session_id=p.session_id, created_at=now)
        s.add(row)
    row.entity_number = p.entity_number
    row.employee_number = p.employee_number
    row.application_type = p.app_type
    row.application_number = p.app_number
    row.status = "failed" if reason else "verified"
    row.failure_reason = reason
    row.job_id = ctx.job.id
    row.updated_at = now
    row.verified_at = None if reason else now
    return {"session_id": p.session_id, "status": row.status, "failure_reason": reason}


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
