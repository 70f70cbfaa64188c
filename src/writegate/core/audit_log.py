"""The operators' audit log: who did what to which jobs, and when (SQLAlchemy Core, no ORM).

Its statements run on an ORM session (console, admin API) or a plain connection
(`writegate jobs`), in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    insert,
    select,
)

from writegate.core.db.metadata import METADATA

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

AUDIT_LOG = Table(
    "audit_log",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    # the tenant whose jobs it names (a sign-in's: the principal's; several, or none: "*"):
    # operators bound to it see the entry
    Column("tenant", String(200), nullable=False),
    # e.g. "retry", "cancel", "bulk_retry", "bulk_cancel", "prune", "sign_in", "sign_out"
    Column("action", String(50), nullable=False),
    Column("job_ids", JSON, nullable=False),
    # what the action asked for and what it did (filter, refused ids and why)
    Column("detail", JSON, nullable=False),
    Index("ix_audit_log_at", "at"),
)
#: each job an entry names (its `job_ids`), to find a job's entries by index
AUDIT_LOG_JOBS = Table(
    "audit_log_jobs",
    METADATA,
    Column("entry_id", Integer, ForeignKey("audit_log.id"), primary_key=True),
    Column("job_id", String(36), primary_key=True),
    Index("ix_audit_log_jobs_job_id", "job_id"),
)
#: the tenant of an entry on several tenants' jobs, or on every tenant's (a prune): only
#: operators of every tenant see it
ALL_TENANTS = "*"

_C = AUDIT_LOG.c
_J = AUDIT_LOG_JOBS.c


def record(
    conn: Connection | Session,
    *,
    at: datetime,
    actor: str,
    tenant: str,
    action: str,
    job_ids: Sequence[str],
    detail: dict[str, Any] | None = None,
    also_names: Sequence[str] = (),
) -> int:
    """Add an entry in the caller's transaction (it commits with the action itself); its id.

    `job_ids` are the jobs it acted on; `also_names` other jobs it concerns (the ones it
    refused), whose pages list it too.
    """
    values = {
        "at": at,
        "actor": actor,
        "tenant": tenant,
        "action": action,
        "job_ids": list(job_ids),
        "detail": dict(detail or {}),
    }
    new_id: int = conn.execute(insert(AUDIT_LOG).values(values).returning(_C.id)).scalar_one()
    named = [{"entry_id": new_id, "job_id": j} for j in dict.fromkeys([*job_ids, *also_names])]
    if named:
        conn.execute(insert(AUDIT_LOG_JOBS), named)
    return new_id


def recent(
    conn: Connection | Session, *, tenant: str | None, limit: int = 100, before: int | None = None
) -> list[Row[Any]]:
    """Newest entries first; only the tenant's when tenant is given."""
    q = select(AUDIT_LOG)
    if tenant is not None:
        q = q.where(_C.tenant == tenant)
    if before is not None:
        q = q.where(_C.id < before)
    return list(conn.execute(q.order_by(_C.id.desc()).limit(limit)).all())


def for_job(
    conn: Connection | Session, job_id: str, *, tenant: str | None, limit: int = 1000
) -> list[Row[Any]]:
    """Entries naming a job, newest first; only the tenant's when tenant is given."""
    q = select(AUDIT_LOG).join(AUDIT_LOG_JOBS, _J.entry_id == _C.id).where(_J.job_id == job_id)
    if tenant is not None:
        q = q.where(_C.tenant == tenant)
    return list(conn.execute(q.order_by(_C.id.desc()).limit(limit)).all())
