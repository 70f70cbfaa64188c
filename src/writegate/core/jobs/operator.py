"""Operator queries and actions on jobs: filters, keyset pages, overview figures, bulk actions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from writegate.core.jobs.model import ACTIVE, JobRow, Status

#: At most this many jobs are touched by one bulk action.
BULK_LIMIT = 1000

#: (created_at, id) of the last job of a page; the next page starts after it.
Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class JobFilter:
    """Which jobs an operator asks for; empty fields match everything."""

    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    #: None means every tenant (only for principals that may see all of them)
    tenant: str | None = None
    #: an id prefix, or a part of the exclusive key
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What one job's retry or cancel did: done, or refused with a reason."""

    id: str
    ok: bool
    status: str | None
    reason: str | None = None
    holder: str | None = None


@dataclass(frozen=True)
class WorkerSeen:
    """A worker that holds at least one running job's lease."""

    id: str
    jobs: list[str] = field(default_factory=list)
    lease_expires_at: datetime | None = None


def conditions(f: JobFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter."""
    out: list[ColumnElement[bool]] = []
    if f.statuses:
        out.append(JobRow.status.in_(list(f.statuses)))
    if f.kinds:
        out.append(JobRow.kind.in_(list(f.kinds)))
    if f.tenant is not None:
        out.append(JobRow.tenant == f.tenant)
    if f.text:
        escaped = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(
            or_(
                JobRow.id.like(f"{escaped}%", escape="\\"),
                JobRow.exclusive_key.like(f"%{escaped}%", escape="\\"),
            )
        )
    if f.since is not None:
        out.append(JobRow.created_at >= f.since)
    if f.until is not None:
        out.append(JobRow.created_at < f.until)
    return out


def page_query(f: JobFilter, *, limit: int, after: Cursor | None = None) -> Select[JobRow]:
    """The SELECT of one newest-first page (limit + 1 rows: the extra one says there is more)."""
    q = select(JobRow).where(*conditions(f))
    if after is not None:
        at, job_id = after
        # The plain `created_at <= at` lets SQLite start an index range at the cursor; with
        # the OR alone it walks the index from the newest job (a page cost ~ its depth).
        q = q.where(
            JobRow.created_at <= at,
            or_(JobRow.created_at < at, and_(JobRow.created_at == at, JobRow.id < job_id)),
        )
    return q.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit + 1)


def page(
    session: Session, f: JobFilter, *, limit: int, after: Cursor | None = None
) -> tuple[list[JobRow], Cursor | None]:
    """One newest-first page of matching jobs and the cursor of the next (keyset, no OFFSET)."""
    rows = list(session.scalars(page_query(f, limit=limit, after=after)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].created_at, rows[-1].id) if more and rows else None)


def matching_ids(session: Session, f: JobFilter, *, limit: int = BULK_LIMIT) -> list[str]:
    """Ids of up to limit matching jobs, newest first (the target of a bulk action)."""
    q = (
        select(JobRow.id)
        .where(*conditions(f))
        .order_by(JobRow.created_at.desc(), JobRow.id.desc())
        .limit(limit)
    )
    return list(session.scalars(q))


def counts_by_kind(session: Session, tenant: str | None) -> dict[str, dict[str, int]]:
    """Number of jobs per kind and status."""
    q = select(JobRow.kind, JobRow.status, func.count()).group_by(JobRow.kind, JobRow.status)
    if tenant is not None:
        q = q.where(JobRow.tenant == tenant)
    out: dict[str, dict[str, int]] = {}
    for kind, status, n in session.execute(q):
        out.setdefault(str(kind), {})[str(status)] = int(n)
    return out


def oldest_queued(session: Session, tenant: str | None) -> dict[str, datetime]:
    """Per kind, when its oldest queued job was created."""
    q = (
        select(JobRow.kind, func.min(JobRow.created_at))
        .where(JobRow.status == Status.QUEUED.value)
        .group_by(JobRow.kind)
    )
    if tenant is not None:
        q = q.where(JobRow.tenant == tenant)
    return {str(k): at for k, at in session.execute(q) if at is not None}


def _minute(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc("minute", column), "YYYY-MM-DD HH24:MI")
    return func.strftime("%Y-%m-%d %H:%M", column)


def finished_per_minute(
    session: Session, tenant: str | None, now: datetime, minutes: int = 60
) -> dict[str, list[int]]:
    """Per final status, jobs finished in each of the last `minutes` minutes (oldest first)."""
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    bucket = _minute(session, JobRow.finished_at)
    q = (
        select(JobRow.status, bucket, func.count())
        .where(JobRow.finished_at >= start, JobRow.finished_at <= now)
        .group_by(JobRow.status, bucket)
    )
    if tenant is not None:
        q = q.where(JobRow.tenant == tenant)
    labels = [(start + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M") for i in range(minutes)]
    index = {label: i for i, label in enumerate(labels)}
    out = {s: [0] * minutes for s in (Status.SUCCEEDED.value, Status.FAILED.value)}
    for status, label, n in session.execute(q):
        if status in out and label in index:
            out[status][index[label]] += int(n)
    return out


def failures_since(session: Session, tenant: str | None, since: datetime) -> dict[str, int]:
    """Per kind, jobs that failed for good since `since`."""
    q = (
        select(JobRow.kind, func.count())
        .where(JobRow.status == Status.FAILED.value, JobRow.finished_at >= since)
        .group_by(JobRow.kind)
    )
    if tenant is not None:
        q = q.where(JobRow.tenant == tenant)
    return {str(k): int(n) for k, n in session.execute(q)}


def workers_seen(session: Session, tenant: str | None) -> list[WorkerSeen]:
    """Workers holding a running job's lease (an idle worker holds none, so is not listed)."""
    q = select(JobRow.lease_owner, JobRow.id, JobRow.lease_expires_at).where(
        JobRow.status == Status.RUNNING.value, JobRow.lease_owner.is_not(None)
    )
    if tenant is not None:
        q = q.where(JobRow.tenant == tenant)
    seen: dict[str, WorkerSeen] = {}
    for owner, job_id, expires in session.execute(q.order_by(JobRow.lease_owner, JobRow.id)):
        w = seen.setdefault(str(owner), WorkerSeen(str(owner)))
        w.jobs.append(str(job_id))
        if expires is not None and (w.lease_expires_at is None or expires > w.lease_expires_at):
            seen[w.id] = WorkerSeen(w.id, w.jobs, expires)
    return list(seen.values())


def _locked(session: Session, job_id: str, tenant: str | None) -> JobRow | None:
    q = select(JobRow).where(JobRow.id == job_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = session.scalar(q)
    if row is None or (tenant is not None and row.tenant != tenant):
        return None
    return row


def _holder(session: Session, key: str, job_id: str) -> str | None:
    return session.scalar(
        select(JobRow.id).where(
            JobRow.exclusive_key == key, JobRow.status.in_(ACTIVE), JobRow.id != job_id
        )
    )


def retry_one(session: Session, job_id: str, *, tenant: str | None, now: datetime) -> Outcome:
    """Queue a failed or cancelled job again with fresh attempts, in the caller's transaction."""
    row = _locked(session, job_id, tenant)
    if row is None:
        return Outcome(job_id, False, None, "not_found")
    if row.status not in (Status.FAILED.value, Status.CANCELLED.value):
        reason = "active" if row.status in ACTIVE else "final"
        return Outcome(job_id, False, row.status, reason)
    holder = _holder(session, row.exclusive_key, job_id) if row.exclusive_key else None
    if holder is not None:
        return Outcome(job_id, False, row.status, "key_held", holder)
    # The UPDATE runs inside its own savepoint (begun before anything is flushed), so a
    # holder that appeared since the check costs only this job, never the transaction.
    try:
        with session.begin_nested():
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == row.status)
                .values(
                    status=Status.QUEUED.value,
                    attempts=0,
                    run_after=now,
                    finished_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        holder = _holder(session, row.exclusive_key or "", job_id)
        return Outcome(job_id, False, row.status, "key_held", holder)
    session.info["writegate_enqueued"] = True
    return Outcome(job_id, True, Status.QUEUED.value)


def cancel_one(session: Session, job_id: str, *, tenant: str | None, now: datetime) -> Outcome:
    """Cancel a queued or running job in the caller's transaction."""
    row = _locked(session, job_id, tenant)
    if row is None:
        return Outcome(job_id, False, None, "not_found")
    if row.status not in ACTIVE:
        return Outcome(job_id, False, row.status, "final")
    session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.status.in_(ACTIVE))
        .values(
            status=Status.CANCELLED.value,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return Outcome(job_id, True, Status.CANCELLED.value)


def retry_many(
    session: Session, ids: Sequence[str], *, tenant: str | None, now: datetime
) -> list[Outcome]:
    """`retry_one` for each id, in order, in the caller's transaction."""
    return [retry_one(session, i, tenant=tenant, now=now) for i in ids]


def cancel_many(
    session: Session, ids: Sequence[str], *, tenant: str | None, now: datetime
) -> list[Outcome]:
    """`cancel_one` for each id, in order, in the caller's transaction."""
    return [cancel_one(session, i, tenant=tenant, now=now) for i in ids]
