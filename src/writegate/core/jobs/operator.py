"""Operator queries and actions on jobs: filters, keyset pages, overview figures, bulk actions.

Core statements on `table.JOBS` only: they run on an ORM session or a plain connection, so
`writegate jobs` pages, looks up, retries and cancels without loading the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from writegate.core.db import InValues
from writegate.core.jobs.criteria import Cursor, JobFilter
from writegate.core.jobs.status import ACTIVE, Status
from writegate.core.jobs.table import ACTIVE_KEYED, JOBS, NOTIFY_CHANNEL

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    #: where an operator's statements run: an ORM session or a plain connection
    Conn = Connection | Session

__all__ = ["BULK_LIMIT", "Cursor", "JobFilter", "Outcome", "WorkerSeen"]

#: At most this many jobs are touched by one bulk action.
BULK_LIMIT = 1000

_C = JOBS.c

#: the job `j_id`, every column in table order (`job.COLUMNS`)
BY_ID = select(*JOBS.c).where(_C.id == bindparam("j_id"))
#: the id of the active job holding the exclusive key `h_key`
ACTIVE_HOLDER = select(_C.id).where(_C.exclusive_key == bindparam("h_key"), text(ACTIVE_KEYED))
#: release the jobs waiting on any of the jobs `r_ids` (each now final): claimable from now
RELEASE_WAITING = update(JOBS).where(InValues(_C.waiting_on, "r_ids")).values(waiting_on=None)
#: tell every LISTENing worker, at COMMIT, that jobs became claimable (PostgreSQL)
NOTIFY = select(func.pg_notify(NOTIFY_CHANNEL, ""))


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
        out.append(_C.status.in_(list(f.statuses)))
    if f.kinds:
        out.append(_C.kind.in_(list(f.kinds)))
    if f.tenant is not None:
        out.append(_C.tenant == f.tenant)
    if f.text:
        escaped = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(
            or_(
                _C.id.like(f"{escaped}%", escape="\\"),
                _C.exclusive_key.like(f"%{escaped}%", escape="\\"),
            )
        )
    if f.since is not None:
        out.append(_C.created_at >= f.since)
    if f.until is not None:
        out.append(_C.created_at < f.until)
    return out


def page_query(f: JobFilter, *, limit: int, after: Cursor | None = None) -> Select[Any]:
    """The SELECT of one newest-first page (limit + 1 rows: the extra one says there is more)."""
    q = select(JOBS).where(*conditions(f))
    if after is not None:
        at, job_id = after
        # The plain `created_at <= at` lets SQLite start an index range at the cursor; with
        # the OR alone it walks the index from the newest job (a page cost ~ its depth).
        q = q.where(
            _C.created_at <= at,
            or_(_C.created_at < at, and_(_C.created_at == at, _C.id < job_id)),
        )
    return q.order_by(_C.created_at.desc(), _C.id.desc()).limit(limit + 1)


def page(
    conn: Conn, f: JobFilter, *, limit: int, after: Cursor | None = None
) -> tuple[list[Row[Any]], Cursor | None]:
    """One newest-first page of matching jobs and the cursor of the next (keyset, no OFFSET)."""
    rows = list(conn.execute(page_query(f, limit=limit, after=after)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].created_at, rows[-1].id) if more and rows else None)


def matching_ids(conn: Conn, f: JobFilter, *, limit: int = BULK_LIMIT) -> list[str]:
    """Ids of up to limit matching jobs, newest first (the target of a bulk action)."""
    q = (
        select(_C.id)
        .where(*conditions(f))
        .order_by(_C.created_at.desc(), _C.id.desc())
        .limit(limit)
    )
    return list(conn.scalars(q))


def tenants_of(conn: Conn, ids: Sequence[str]) -> set[str]:
    """The tenants of these jobs."""
    if not ids:
        return set()
    return set(conn.scalars(select(_C.tenant).where(_C.id.in_(ids)).distinct()))


def counts_by_kind(session: Session, tenant: str | None) -> dict[str, dict[str, int]]:
    """Number of jobs per kind and status."""
    q = select(_C.kind, _C.status, func.count()).group_by(_C.kind, _C.status)
    if tenant is not None:
        q = q.where(_C.tenant == tenant)
    out: dict[str, dict[str, int]] = {}
    for kind, status, n in session.execute(q):
        out.setdefault(str(kind), {})[str(status)] = int(n)
    return out


def oldest_queued(session: Session, tenant: str | None) -> dict[str, datetime]:
    """Per kind, when its oldest queued job was created."""
    q = (
        select(_C.kind, func.min(_C.created_at))
        .where(_C.status == Status.QUEUED.value)
        .group_by(_C.kind)
    )
    if tenant is not None:
        q = q.where(_C.tenant == tenant)
    return {str(k): at for k, at in session.execute(q) if at is not None}


def _dialect(conn: Conn) -> str:
    return conn.dialect.name if isinstance(conn, Connection) else conn.get_bind().dialect.name


def _minute(session: Session, column: Any) -> Any:
    if _dialect(session) == "postgresql":
        return func.to_char(func.date_trunc("minute", column), "YYYY-MM-DD HH24:MI")
    return func.strftime("%Y-%m-%d %H:%M", column)


def finished_per_minute(
    session: Session, tenant: str | None, now: datetime, minutes: int = 60
) -> dict[str, list[int]]:
    """Per final status, jobs finished in each of the last `minutes` minutes (oldest first)."""
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    bucket = _minute(session, _C.finished_at)
    q = (
        select(_C.status, bucket, func.count())
        .where(_C.finished_at >= start, _C.finished_at <= now)
        .group_by(_C.status, bucket)
    )
    if tenant is not None:
        q = q.where(_C.tenant == tenant)
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
        select(_C.kind, func.count())
        .where(_C.status == Status.FAILED.value, _C.finished_at >= since)
        .group_by(_C.kind)
    )
    if tenant is not None:
        q = q.where(_C.tenant == tenant)
    return {str(k): int(n) for k, n in session.execute(q)}


def workers_seen(session: Session, tenant: str | None) -> list[WorkerSeen]:
    """Workers holding a running job's lease (an idle worker holds none, so is not listed)."""
    q = select(_C.lease_owner, _C.id, _C.lease_expires_at).where(
        _C.status == Status.RUNNING.value, _C.lease_owner.is_not(None)
    )
    if tenant is not None:
        q = q.where(_C.tenant == tenant)
    seen: dict[str, WorkerSeen] = {}
    for owner, job_id, expires in session.execute(q.order_by(_C.lease_owner, _C.id)):
        w = seen.setdefault(str(owner), WorkerSeen(str(owner)))
        w.jobs.append(str(job_id))
        if expires is not None and (w.lease_expires_at is None or expires > w.lease_expires_at):
            seen[w.id] = WorkerSeen(w.id, w.jobs, expires)
    return list(seen.values())


def _locked(conn: Conn, job_id: str, tenant: str | None) -> Any:
    """The job's status, tenant and key, row-locked on PostgreSQL; None if not the tenant's."""
    q = select(_C.status, _C.tenant, _C.exclusive_key).where(_C.id == job_id)
    if _dialect(conn) == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None or (tenant is not None and row.tenant != tenant):
        return None
    return row


def key_holder(conn: Conn, key: str) -> str | None:
    """The id of the active job holding an exclusive key, if any."""
    found: str | None = conn.scalar(ACTIVE_HOLDER, {"h_key": key})
    return found


def retry_one(conn: Conn, job_id: str, *, tenant: str | None, now: datetime) -> Outcome:
    """Queue a failed or cancelled job again with fresh attempts, in the caller's transaction."""
    row = _locked(conn, job_id, tenant)
    if row is None:
        return Outcome(job_id, False, None, "not_found")
    if row.status not in (Status.FAILED.value, Status.CANCELLED.value):
        reason = "active" if row.status in ACTIVE else "final"
        return Outcome(job_id, False, row.status, reason)
    # The job itself is final here, so an active holder of its key is another job.
    holder = key_holder(conn, row.exclusive_key) if row.exclusive_key else None
    if holder is not None:
        return Outcome(job_id, False, row.status, "key_held", holder)
    # The UPDATE runs inside its own savepoint (begun before anything is flushed), so a
    # holder that appeared since the check costs only this job, never the transaction.
    try:
        with conn.begin_nested():
            conn.execute(
                update(JOBS)
                .where(_C.id == job_id, _C.status == row.status)
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
        holder = key_holder(conn, row.exclusive_key or "")
        return Outcome(job_id, False, row.status, "key_held", holder)
    return Outcome(job_id, True, Status.QUEUED.value)


def cancel_one(conn: Conn, job_id: str, *, tenant: str | None, now: datetime) -> Outcome:
    """Cancel a queued or running job in the caller's transaction."""
    row = _locked(conn, job_id, tenant)
    if row is None:
        return Outcome(job_id, False, None, "not_found")
    if row.status not in ACTIVE:
        return Outcome(job_id, False, row.status, "final")
    conn.execute(
        update(JOBS)
        .where(_C.id == job_id, _C.status.in_(ACTIVE))
        .values(
            status=Status.CANCELLED.value,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    conn.execute(RELEASE_WAITING, {"r_ids": [job_id]})
    return Outcome(job_id, True, Status.CANCELLED.value)


def announce(
    conn: Conn, outcomes: Sequence[Outcome], wake: Callable[[], None] | None = None
) -> None:
    """Tell the workers, at COMMIT, of the jobs that retries or cancels made claimable (a
    job retried, those waiting on a job cancelled): other processes' by a NOTIFY (PostgreSQL;
    the jobs INSERT trigger does not fire for these UPDATEs), this process's by `wake` (on a
    session: its worker skips the NOTIFYs its own process sends)."""
    if not any(o.ok for o in outcomes):
        return
    if isinstance(conn, Connection):
        connection = conn
    else:
        connection = conn.connection()
        if wake is not None:
            # Imported here: a session means the ORM is loaded; `writegate jobs` acts on a
            # plain connection without it.
            from writegate.core.db.commit_actions import after_commit

            after_commit(conn, wake)
    if connection.dialect.name == "postgresql":
        connection.execute(NOTIFY)


def retry_many(
    conn: Conn, ids: Sequence[str], *, tenant: str | None, now: datetime
) -> list[Outcome]:
    """`retry_one` for each id, in order, in the caller's transaction."""
    return [retry_one(conn, i, tenant=tenant, now=now) for i in ids]


def cancel_many(
    conn: Conn, ids: Sequence[str], *, tenant: str | None, now: datetime
) -> list[Outcome]:
    """`cancel_one` for each id, in order, in the caller's transaction."""
    return [cancel_one(conn, i, tenant=tenant, now=now) for i in ids]
