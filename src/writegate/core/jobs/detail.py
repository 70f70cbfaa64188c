"""One job in full as an operator sees it: secrets masked, its key's holder, its audit entries.

The console, the admin API and `writegate jobs show` all look a job up through `look_up`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from writegate.core import audit_log
from writegate.core.jobs.listing import iso, summary
from writegate.core.jobs.status import ACTIVE
from writegate.core.masking import masked

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from writegate.core.jobs import Job, JobManager


def look_up(
    session: Session, jobs: JobManager, job_id: str, *, tenant: str | None
) -> tuple[Job, dict[str, Any], list[audit_log.AuditRow]] | None:
    """The job, its fields (secrets masked) and its latest 50 audit entries; None if not seen."""
    job = jobs.get(session, job_id, tenant=tenant) if len(job_id) <= 36 else None
    if job is None:
        return None
    entries = audit_log.for_job(session, job.id, limit=50)
    holder = None
    if job.exclusive_key and job.status.value not in ACTIVE:
        holder = jobs.active_holder(session, job.exclusive_key)
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
    }
    return job, fields, entries
