"""jef-one business logic: accept jobs, run them, answer the confirmation GETs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session

from writegate.core.db import DriverStatement, InValues
from writegate.core.jobs import Job, NewJob, new_job_id
from writegate.core.observability.context import job_origin
from writegate.core.services import Services
from writegate.core.text import canonical_uuid
from writegate.modules.jef_one.errors import JefOneError
from writegate.modules.jef_one.jobs import KIND_EMPLOYEE, KIND_ENTITY, KIND_SESSION, NAME, TENANT
from writegate.modules.jef_one.models import (
    EMPLOYEES,
    ENTITIES,
    SESSIONS,
    Employee,
    Entity,
    SessionRecord,
)
from writegate.modules.jef_one.schemas import CreateSessionJob, EmployeePost, EntityPost

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


def _conflict(item: Accept, job_id: str | None, status: str | None) -> JefOneError:
    operation, table = OPERATIONS[item.kind]
    return JefOneError(
        409,
        "conflict",
        "JOB_IN_PROGRESS",
        f"a {operation} job for {item.pk} is already queued or running: {job_id}",
        operation=operation,
        job_id=job_id,
        job_status=status,
        target_table=table,
        target_pk=item.pk,
        allowed_method="POST",
    )


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


@dataclass(frozen=True)
class Accept:
    """One accepted POST: the job to queue, the record it targets, the job it must wait for."""

    kind: str
    payload: dict[str, Any]
    #: the target record's key (session id, entity number, entity/employee)
    pk: str
    #: exclusive keys of accepted writes this one depends on, nearest first
    depends_on: tuple[str, ...] = ()
    job_id: str = field(default_factory=new_job_id)
    #: the request's id and trace context, taken here: the job is written in a shared batch
    origin: dict[str, str] | None = field(default_factory=job_origin)

    @property
    def key(self) -> str:
        """The exclusive key: one active job per target record."""
        return _key(self.kind, self.pk)


def _key(kind: str, pk: str) -> str:
    """The exclusive key of the accepted writes of kind to the record pk."""
    return f"{kind}:{pk}"


def _employee_pk(entity_number: str, employee_number: str) -> str:
    return f"{entity_number}/{employee_number}"


def _entity_key(entity_number: str) -> str:
    return _key(KIND_ENTITY, entity_number)


def _employee_key(entity_number: str, employee_number: str) -> str:
    return _key(KIND_EMPLOYEE, _employee_pk(entity_number, employee_number))


def _session_key(session_id: str) -> str:
    return _key(KIND_SESSION, session_id)


class Accepts:
    """The accept write: a batch of POSTs queued with one jobs INSERT in the shared commit.

    An accept writes its job and nothing else: until the job is final, the confirming GET
    shows the record's pending write from the job itself. A session already verified is
    refused. A write that depends on another accepted write (an employee on its entity, a
    session on its employee or entity) runs after that write's job.
    """

    def __init__(self, services: Services) -> None:
        self.jobs = services.jobs
        sessions = SessionRecord.__table__
        self._verified = DriverStatement(
            services.db.engine.dialect,
            select(sessions.c.session_id, sessions.c.job_id).where(
                InValues(sessions.c.session_id, "ids"), sessions.c.status == "verified"
            ),
        )

    def __call__(self, s: Session, items: list[Accept]) -> list[Job | JefOneError]:
        """Each item's job, or its refusal (JOB_IN_PROGRESS, SESSION_EXISTS)."""
        outcomes: dict[int, Job | JefOneError] = {}
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            if item.key in first:  # the same record twice in one batch: the first one goes
                # (a refusal: the batch runs again with each caller alone, answered from the table)
                outcomes[i] = _conflict(item, items[first[item.key]].job_id, None)
            else:
                first[item.key] = i
        todo = [i for i in range(len(items)) if i not in outcomes]
        after = self._holders(s, [items[i] for i in todo])
        jobs = []
        for i in todo:
            item = items[i]
            jobs.append(
                NewJob(
                    item.kind,
                    item.payload,
                    TENANT,
                    job_id=item.job_id,
                    exclusive_key=item.key,
                    after_id=next((after[k] for k in item.depends_on if k in after), None),
                    trace_context=item.origin,
                )
            )
            # A write later in this batch runs after this one, as after an earlier batch's;
            # where an earlier job holds the key, this one is refused and that job stays.
            after.setdefault(item.key, item.job_id)
        queued = self.jobs.enqueue_many(s, jobs)
        for i, out in zip(todo, queued, strict=True):
            if isinstance(out, Job):
                outcomes[i] = out
            else:
                outcomes[i] = _conflict(items[i], out.job_id, out.status)
        outcomes.update(self._verified_sessions(s, items, todo))
        return [outcomes[i] for i in range(len(items))]

    def _verified_sessions(
        self, s: Session, items: list[Accept], todo: list[int]
    ) -> dict[int, JefOneError]:
        """SESSION_EXISTS for each session already verified (it outranks JOB_IN_PROGRESS).

        Read after the jobs INSERT: on PostgreSQL an INSERT whose key the session's job still
        holds waits for that job's final COMMIT, which also writes the session, and this
        statement (READ COMMITTED) then sees it.
        """
        sessions = {items[i].pk: i for i in todo if items[i].kind == KIND_SESSION}
        if not sessions:
            return {}
        verified = self._verified.fetch(s, {"ids": list(sessions)})
        return {sessions[sid]: _session_exists(sid, job_id) for sid, job_id in verified}

    def _holders(self, s: Session, items: list[Accept]) -> dict[str, str]:
        keys = {k for item in items for k in item.depends_on}
        return self.jobs.active_holders(s, keys) if keys else {}


async def _accept(services: Services, item: Accept) -> Job:
    """Queue one accept in the shared commit; answered once it is durable."""
    accepts: Accepts = services.extras[NAME]
    job: Job = await services.db.group.run_many(accepts, item)
    return job


async def accept_session(services: Services, body: CreateSessionJob) -> dict[str, Any]:
    """Queue the creation of a session; refuse a session_id that is already verified."""
    entity, employee = body.entity_number, body.employee_number
    item = Accept(
        KIND_SESSION,
        body.model_dump(),
        body.session_id,
        (_employee_key(entity, employee), _entity_key(entity)),
    )
    job = await _accept(services, item)
    return accepted(job, body.session_id, session_confirmation(body.session_id))


def session_confirmation(session_id: str) -> str:
    """The GET that confirms a session's final state."""
    return f"GET /jef-one-get-session-by-session-id?session_id={session_id}"


async def accept_entity(services: Services, body: EntityPost) -> dict[str, Any]:
    """Queue an entity upsert."""
    job = await _accept(services, Accept(KIND_ENTITY, body.model_dump(), body.entity_number))
    return accepted(
        job,
        body.entity_number,
        f"GET /jef-one-get-entity-by-entity-number?entity_number={body.entity_number}",
    )


async def accept_employee(services: Services, body: EmployeePost) -> dict[str, Any]:
    """Queue an employee upsert, run after any accepted upsert of its entity."""
    pk = _employee_pk(body.entity_number, body.employee_number)
    item = Accept(KIND_EMPLOYEE, body.model_dump(), pk, (_entity_key(body.entity_number),))
    job = await _accept(services, item)
    return accepted(
        job,
        pk,
        "GET /jef-one-get-employee-by-employee-number"
        f"?entity_number={body.entity_number}&employee_number={body.employee_number}",
    )


# -- confirmation GETs ------------------------------------------------------------


async def job_view(services: Services, job_id: str) -> dict[str, Any]:
    """A jef-one job's state; another system's job looks like an unknown id."""
    job = await services.jobs.read(canonical_uuid(job_id), tenant=TENANT)
    if job is None or job.kind not in OPERATIONS:
        return {"is_found": False, "job_id": job_id, "message": f"job {job_id} not found"}
    operation, table = OPERATIONS[job.kind]
    payload = job.payload or {}
    pk = payload.get("session_id") or payload.get("entity_number")
    if job.kind == KIND_EMPLOYEE:
        pk = _employee_pk(str(payload.get("entity_number")), str(payload.get("employee_number")))
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


_SESSION_MESSAGES = {
    "pending": "session is pending: its job is accepted and not yet final",
    "verified": "session is verified",
    "failed": "session is failed",
}
_SESSIONS: Table = SessionRecord.__table__  # type: ignore[assignment]
_SESSION = select(*_SESSIONS.c).where(_SESSIONS.c.session_id == bindparam("session_id"))
_ENTITY_ACTIVE = select(Entity.is_active).where(Entity.entity_number == bindparam("entity_number"))
_EMPLOYEE_COUNT = (
    select(func.count())
    .select_from(Employee)
    .where(Employee.entity_number == bindparam("entity_number"))
    .scalar_subquery()
)
_ENTITY = select(Entity.entity_name, Entity.is_active, _EMPLOYEE_COUNT.label("employees")).where(
    Entity.entity_number == bindparam("entity_number")
)
_EMPLOYEE = select(Employee.employee_name, Employee.is_active).where(
    Employee.entity_number == bindparam("entity_number"),
    Employee.employee_number == bindparam("employee_number"),
)


async def _pending(services: Services, key: str) -> dict[str, Any]:
    """The accepted upsert of a record whose job is not final yet, if any."""
    job = await services.jobs.read_active_holder(key)
    if job is None:
        return {"pending_job_id": None, "pending_job_status": None}
    return {"pending_job_id": job.id, "pending_job_status": job.status.value}


async def session_view(services: Services, session_id: str) -> dict[str, Any]:
    """A session's final state, or its accepted write while its job is not final."""
    # The job first: its final COMMIT writes the session and ends the job at once, so a job
    # seen active here is either still pending or already the row read next.
    job = await services.jobs.read_active_holder(_session_key(session_id))
    row = await services.db.reads.first(_SESSION, {"session_id": session_id})
    if job is not None and (row is None or row.job_id != job.id):
        return _pending_session(session_id, job, row)
    if row is None:
        return {
            "is_found": False,
            "session_id": session_id,
            "message": f"session {session_id} not found: no such session was accepted, "
            "or its job ended without writing it",
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
        "message": _SESSION_MESSAGES[row.status],
    }


def _pending_session(session_id: str, job: Job, row: Any) -> dict[str, Any]:
    """A session as its accepted job will write it (over a failed one, if any)."""
    p = job.payload or {}
    return {
        "is_found": True,
        "session_id": session_id,
        "entity_number": p.get("entity_number"),
        "employee_number": p.get("employee_number"),
        "application_type": p.get("app_type"),
        "application_number": p.get("app_number"),
        "status": "pending",
        "failure_reason": None,
        "job_id": job.id,
        "created_at": iso(job.created_at if row is None else row.created_at),
        "updated_at": iso(job.created_at),
        "verified_at": None,
        "message": _SESSION_MESSAGES["pending"],
    }


async def entity_view(services: Services, entity_number: str) -> dict[str, Any]:
    """An entity, and whether sessions can be created under it."""
    # The job first, as for a session: read after the row, a job that became final between
    # the two reads showed neither the record nor its pending write.
    pending = await _pending(services, _entity_key(entity_number))
    row = await services.db.reads.first(_ENTITY, {"entity_number": entity_number})
    if row is None:
        waiting = pending["pending_job_id"] is not None
        return {
            "is_found": False,
            "can_continue": False,
            "entity_number": entity_number,
            **pending,
            "message": f"entity {entity_number} has a pending upsert"
            if waiting
            else f"entity {entity_number} not found",
        }
    return {
        "is_found": True,
        "can_continue": row.is_active,
        "entity_number": entity_number,
        "entity_name": row.entity_name,
        "entity_active": row.is_active,
        "employee_count": int(row.employees or 0),
        **pending,
        "message": "entity is active" if row.is_active else "entity is not active",
    }


async def employee_view(
    services: Services, entity_number: str, employee_number: str
) -> dict[str, Any]:
    """An employee, and whether a session can be created for them."""
    reads = services.db.reads
    pending = await _pending(services, _employee_key(entity_number, employee_number))  # first
    entity_active = await reads.scalar(_ENTITY_ACTIVE, {"entity_number": entity_number})
    row = await reads.first(
        _EMPLOYEE, {"entity_number": entity_number, "employee_number": employee_number}
    )
    if row is None:
        waiting = pending["pending_job_id"] is not None
        return {
            "is_found": False,
            "can_continue": False,
            "entity_number": entity_number,
            "employee_number": employee_number,
            "entity_active": entity_active,
            **pending,
            "message": f"employee {employee_number} of entity {entity_number} has a pending upsert"
            if waiting
            else f"employee {employee_number} not found in entity {entity_number}",
        }
    ok = row.is_active and entity_active is True
    return {
        "is_found": True,
        "can_continue": ok,
        "entity_number": entity_number,
        "employee_number": employee_number,
        "employee_name": row.employee_name,
        "employee_active": row.is_active,
        "entity_active": entity_active,
        **pending,
        "message": "employee can start sessions" if ok else "employee cannot start sessions",
    }
