"""One job in full as an operator sees it: secrets masked, its key's holder, its audit entries.

The console, the admin API and `writegate jobs show` all look a job up through `look_up`,
with Core statements on an ORM session or a plain connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from writegate.core import audit_log
from writegate.core.jobs.job import COLUMNS, Job
from writegate.core.jobs.listing import iso, summary
from writegate.core.jobs.operator import BY_ID, key_holder
from writegate.core.jobs.status import ACTIVE
from writegate.core.masking import masked

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session


def look_up(
    conn: Connection | Session, job_id: str, *, tenant: str | None
) -> tuple[Job, dict[str, Any], list[Row[Any]]] | None:
    """The job, its fields (secrets masked) and its latest 50 audit entries; None if not seen."""
    row = conn.execute(BY_ID, {"j_id": job_id}).first() if len(job_id) <= 36 else None
    if row is None or (tenant is not None and row.tenant != tenant):
        return None
    job = Job.from_values(COLUMNS, tuple(row))
    entries = audit_log.for_job(conn, job.id, tenant=tenant, limit=50)
    holder = None
    if job.exclusive_key and job.status.value not in ACTIVE:
        holder = key_holder(conn, job.exclusive_key)
    fields = {
        **summary(job),
        "principal": job.principal,
        "payload": masked(job.payload),
        "result": masked(job.result),
        "error": job.error,
        "progress": masked(job.progress),
        "checkpoint": masked(job.checkpoint),
        "run_after": iso(job.run_after),
        "started_at": iso(job.started_at),
        "lease_owner": job.lease_owner,
        "lease_expires_at": iso(job.lease_expires_at),
        "timeout_at": iso(job.timeout_at),
        "idempotency_key": job.idempotency_key,
        "key_holder": holder,
        "after_id": job.after_id,
        "waiting_on": job.waiting_on,
    }
    return job, fields, entries
