"""jef-one business logic: accept jobs, run them, answer the confirmation GETs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from writegate.core.db import DriverStatement, InValues
from writegate.core.exceptions import ExclusiveJobExists, PermanentJobError
from writegate.core.jobs import Job, NewJob
from writegate.core.services import Services
from writegate.core.worker import JobContext
from writegate.modules.jef_one.errors import JefOneError
from writegate.modules.jef_one.models import (
    EMPLOYEES,
    ENTITIES,
    SESSIONS,
    Employee,
    Entity,
    SessionRecord,
)
from writegate.modules.jef_one.schemas import CreateSessionJob, EmployeePost, EntityPost

#: jef-one is a single-tenant backend; every job and row belongs to this tenant
TENANT = "jef-one"

KIND_SESSION = "jef_one.create_session"
KIND_ENTITY = "jef_one.upsert_entity"
KIND_EMPLOYEE = "jef_one.upsert_employee"

#: job kind -> (operation name, target table)
OPERATIONS = {
    KIND_SESSION: ("create_session", SESSIONS),
    KIND_ENTITY: ("upsert_entity", ENTITIES),
    KIND_EMPLOYEE: ("upsert_employee", EMPLOYEES),
}


def iso(value: datetime | None) -> str | None:
    """UTC timestamp as ISO 8601 with milliseconds and Z."""
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


def accepted(job: Job, target_pk: str, confirmation: str) -> dict[str, Any]:
    """The 202 body: every documented response field."""
    operation, table = OPERATIONS[job.kind]
    return {
        "is_accepted": True,
        "message": "Job accepted. This is not the final write: confirm the final state with GET.",
        "operation": operation,
        "job_id": job.id,
        "job_status": job.status.value,
        "target_table": table,
        "target_pk": target_pk,
        "confirmation": confirmation,
        "allowed_method": "POST",
        "error_type": None,
        "error_code": None,
        "errors": [],
        "error": None,
    }


def _conflict(kind: str, pk: str, exc: ExclusiveJobExists) -> JefOneError:
    operation, table = OPERATIONS[kind]
    return JefOneError(
        409,
        "conflict",
        "JOB_IN_PROGRESS",
        f"a {operation} job for {pk} is already queued or running: {exc.job_id}",
        operation=operation,
        job_id=exc.job_id,
        target_table=table,
        target_pk=pk,
        allowed_method="POST",
    )


#: one accept waiting for its group commit: the services, the job kind, its payload and key
_Accept = tuple[Services, str, dict[str, Any], str]


def _new_jobs(items: list[_Accept]) -> list[NewJob]:
    return [NewJob(kind, body, TENANT, exclusive_key=f"{kind}:{pk}") for _, kind, body, pk in items]


def _answers(items: list[_Accept], jobs: list[Job | ExclusiveJobExists]) -> list[Job | JefOneError]:
    return [
        _conflict(kind, pk, out) if isinstance(out, ExclusiveJobExists) else out
        for out, (_, kind, _, pk) in zip(jobs, items, strict=True)
    ]


def _enqueue_many(s: Session, items: list[_Accept]) -> list[Job | JefOneError]:
    """Queue a batch of accepts with one INSERT; a key held by an active job is a 409."""
    return _answers(items, items[0][0].jobs.enqueue_many(s, _new_jobs(items)))


# Core columns, not ORM attributes: the ORM's statement set-up per batch is skipped.
_SESSIONS = SessionRecord.__table__.c
_VERIFIED = select(_SESSIONS.session_id, _SESSIONS.job_id).where(
    InValues(_SESSIONS.session_id, "ids"), _SESSIONS.status == "verified"
)
#: this module's services.extras key, and there the lookup compiled for this database and,
#: on PostgreSQL, the jobs INSERT that looks up each new job's session itself
NAME, VERIFIED, CHECKED_INSERT = "jef_one", "verified_lookup", "checked_insert"
#: the job id of the new job's session if it is verified (migration jef_one_0002)
_VERIFIED_JOB = "jef_one_verified_job(payload ->> 'session_id')"


def prepare(services: Services) -> None:
    """Compile the accept path's statements once for this database (module start-up)."""
    extras = services.extras.setdefault(NAME, {})
    extras[VERIFIED] = DriverStatement(services.db.engine.dialect, _VERIFIED)
    if services.db.is_postgres:
        extras[CHECKED_INSERT] = services.jobs.insert_returning(_VERIFIED_JOB)


def _accept_sessions(s: Session, items: list[_Accept]) -> list[Job | JefOneError]:
    """Queue session creations; refuse a session_id that is already verified."""
    services = items[0][0]
    extras = services.extras[NAME]
    pks = [pk for *_, pk in items]
    # Insert first, then look. An INSERT whose exclusive key is held by a job whose final
    # transaction is committing waits for that COMMIT (unique index; SQLite's single writer),
    # so a lookup after it, with a new snapshot, sees the verified session: no lock is needed
    # to keep a racing POST from a 202.
    if CHECKED_INSERT in extras:
        # PostgreSQL: the look is in the INSERT's RETURNING, a VOLATILE function taking its
        # own snapshot once the row is in: one statement and one round trip, not two.
        jobs, returned = services.jobs.enqueue_many_returning(
            s, _new_jobs(items), extras[CHECKED_INSERT]
        )
        verified = {
            pk: returned[job.id][0]
            for job, pk in zip(jobs, pks, strict=True)
            if isinstance(job, Job) and returned[job.id][0] is not None
        }
        held = list({pk for job, pk in zip(jobs, pks, strict=True) if not isinstance(job, Job)})
        if held:  # a held key answers SESSION_EXISTS too once the session is verified
            verified.update(extras[VERIFIED].fetch(s.connection(), {"ids": held}))
        queued = _answers(items, jobs)
    else:
        queued = _enqueue_many(s, items)
        verified = dict(extras[VERIFIED].fetch(s.connection(), {"ids": list(set(pks))}))
    if not verified:
        return queued
    pairs = list(zip(queued, pks, strict=True))
    services.jobs.discard(s, [o.id for o, pk in pairs if isinstance(o, Job) and pk in verified])
    return [_session_exists(pk, verified[pk]) if pk in verified else o for o, pk in pairs]


def _session_exists(session_id: str, job_id: str | None) -> JefOneError:
    return JefOneError(
        409,
        "conflict",
        "SESSION_EXISTS",
        f"session {session_id} already exists and is verified",
        operation="create_session",
        job_id=job_id,
        job_status="succeeded",
        target_table=SESSIONS,
        target_pk=session_id,
        confirmation=session_confirmation(session_id),
        allowed_method="POST",
    )


async def accept_session(services: Services, body: CreateSessionJob) -> dict[str, Any]:
    """Queue the creation of a session; refuse a session_id that is already verified."""
    # Group commit: concurrent accepts share one durable commit; each answer waits for it.
    item = (services, KIND_SESSION, body.model_dump(), body.session_id)
    job = await services.db.group_many_async(_accept_sessions, item)
    return accepted(job, body.session_id, session_confirmation(body.session_id))


def session_confirmation(session_id: str) -> str:
    """The GET that confirms a session's final state."""
    return f"GET /jef-one-get-session-by-session-id?session_id={session_id}"


async def accept_entity(services: Services, body: EntityPost) -> dict[str, Any]:
    """Queue an entity upsert."""
    item = (services, KIND_ENTITY, body.model_dump(), body.entity_number)
    job = await services.db.group_many_async(_enqueue_many, item)
    return accepted(
        job,
        body.entity_number,
        f"GET /jef-one-get-entity-by-entity-number?entity_number={body.entity_number}",
    )


async def accept_employee(services: Services, body: EmployeePost) -> dict[str, Any]:
    """Queue an employee upsert."""
    pk = f"{body.entity_number}/{body.employee_number}"
    job = await services.db.group_many_async(
        _enqueue_many, (services, KIND_EMPLOYEE, body.model_dump(), pk)
    )
    return accepted(
        job,
        pk,
        "GET /jef-one-get-employee-by-employee-number"
        f"?entity_number={body.entity_number}&employee_number={body.employee_number}",
    )


# -- job handlers ---------------------------------------------------------------


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
    """Create (or re-verify a failed) session; commits with the job's success."""
    p = CreateSessionJob.model_validate(ctx.payload)
    s = ctx.session
    ctx.manager.db.lock(s, f"{KIND_SESSION}:{p.session_id}")
    now = ctx.clock.now()
    row = s.get(SessionRecord, p.session_id)
    if row is not None and row.status == "verified":
        return {"session_id": p.session_id, "status": "verified", "failure_reason": None}
    reason = _refusal(s, p.entity_number, p.employee_number)
    if row is None:
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


# -- confirmation GETs ------------------------------------------------------------


def job_view(services: Services, job_id: str) -> dict[str, Any]:
    """A jef-one job's state; another system's job looks like an unknown id."""
    with services.db.read() as s:
        job = services.jobs.get(s, job_id, tenant=TENANT)
    if job is None or job.kind not in OPERATIONS:
        return {"is_found": False, "job_id": job_id, "message": f"job {job_id} not found"}
    operation, table = OPERATIONS[job.kind]
    payload = job.payload or {}
    pk = payload.get("session_id") or payload.get("entity_number")
    if job.kind == KIND_EMPLOYEE:
        pk = f"{payload.get('entity_number')}/{payload.get('employee_number')}"
    return {
        "is_found": True,
        "job_id": job.id,
        "operation": operation,
        "job_status": job.status.value,
        "attempts": job.attempts,
        "target_table": table,
        "target_pk": pk,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "updated_at": iso(job.updated_at),
        "result": job.result,
        "error": job.error,
        "message": f"job is {job.status.value}",
    }


def session_view(services: Services, session_id: str) -> dict[str, Any]:
    """A session's final state."""
    with services.db.read() as s:
        row = s.get(SessionRecord, session_id)
        if row is None:
            return {
                "is_found": False,
                "session_id": session_id,
                "message": f"session {session_id} not found (its job may still be queued)",
            }
        return {
            "is_found": True,
            "session_id": row.session_id,
            "entity_number": row.entity_number,
            "employee_number": row.employee_number,
            "application_type": row.application_type,
            "application_number": row.application_number,
            "status": row.status,
            "failure_reason": row.failure_reason,
            "job_id": row.job_id,
            "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at),
            "verified_at": iso(row.verified_at),
            "message": f"session is {row.status}",
        }


def entity_view(services: Services, entity_number: str) -> dict[str, Any]:
    """An entity, and whether sessions can be created under it."""
    with services.db.read() as s:
        row = s.get(Entity, entity_number)
        if row is None:
            return {
                "is_found": False,
                "can_continue": False,
                "entity_number": entity_number,
                "message": f"entity {entity_number} not found",
            }
        count = s.scalar(
            select(func.count())
            .select_from(Employee)
            .where(Employee.entity_number == entity_number)
        )
        return {
            "is_found": True,
            "can_continue": row.is_active,
            "entity_number": row.entity_number,
            "entity_name": row.entity_name,
            "entity_active": row.is_active,
            "employee_count": int(count or 0),
            "message": "entity is active" if row.is_active else "entity is not active",
        }


def employee_view(services: Services, entity_number: str, employee_number: str) -> dict[str, Any]:
    """An employee, and whether a session can be created for them."""
    with services.db.read() as s:
        entity = s.get(Entity, entity_number)
        row = s.get(Employee, (entity_number, employee_number))
        if row is None:
            return {
                "is_found": False,
                "can_continue": False,
                "entity_number": entity_number,
                "employee_number": employee_number,
                "entity_active": entity.is_active if entity else None,
                "message": f"employee {employee_number} not found in entity {entity_number}",
            }
        ok = row.is_active and entity is not None and entity.is_active
        return {
            "is_found": True,
            "can_continue": ok,
            "entity_number": entity_number,
            "employee_number": employee_number,
            "employee_name": row.employee_name,
            "employee_active": row.is_active,
            "entity_active": entity.is_active if entity else None,
            "message": "employee can start sessions" if ok else "employee cannot start sessions",
        }
