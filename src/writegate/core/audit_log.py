"""The operators' audit log: who did what to which jobs, and when."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from writegate.core.db import Base


class AuditRow(Base):
    """One operator action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(200))
    #: the actor's tenant: operators bound to it see the entry
    tenant: Mapped[str] = mapped_column(String(200))
    #: e.g. "retry", "cancel", "bulk_retry", "bulk_cancel", "sign_in"
    action: Mapped[str] = mapped_column(String(50))
    job_ids: Mapped[list[str]] = mapped_column(JSON)
    #: what the action asked for and what it did (filter, refused ids and why)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_log_at", "at"),)


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    tenant: str,
    action: str,
    job_ids: Sequence[str],
    detail: dict[str, Any] | None = None,
) -> AuditRow:
    """Add an entry in the caller's transaction (it commits with the action itself)."""
    row = AuditRow(
        at=at,
        actor=actor,
        tenant=tenant,
        action=action,
        job_ids=list(job_ids),
        detail=dict(detail or {}),
    )
    session.add(row)
    session.flush()
    return row


def recent(
    session: Session, *, tenant: str | None, limit: int = 100, before: int | None = None
) -> list[AuditRow]:
    """Newest entries first; only the tenant's when tenant is given."""
    q = select(AuditRow)
    if tenant is not None:
        q = q.where(AuditRow.tenant == tenant)
    if before is not None:
        q = q.where(AuditRow.id < before)
    return list(session.scalars(q.order_by(AuditRow.id.desc()).limit(limit)))


def for_job(session: Session, job_id: str, *, limit: int = 1000) -> list[AuditRow]:
    """Entries naming a job, newest first (scans recent entries: the log is small)."""
    rows = session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit * 20))
    return [r for r in rows if job_id in (r.job_ids or [])][:limit]
