"""Durable jobs: the table and every state change, in one manager."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import uuid_utils
from sqlalchemy import (
    JSON,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from writegate.core.clock import Clock
from writegate.core.db import Base, BatchInsert, Database, DriverStatement, InValues
from writegate.core.exceptions import (
    ExclusiveJobExists,
    LeaseLost,
    PermanentJobError,
    UnknownJobKind,
)
from writegate.core.retry import backoff_seconds

NOTIFY_CHANNEL = "writegate_jobs"


class Status(enum.StrEnum):
    """Life cycle of a job."""

    #: Waiting to be claimed once run_after has passed.
    QUEUED = "queued"
    #: Claimed by a worker that holds an unexpired lease.
    RUNNING = "running"
    #: Finished; its result and business writes committed together.
    SUCCEEDED = "succeeded"
    #: Out of attempts, or failed permanently; the error is kept.
    FAILED = "failed"
    #: Cancelled by an operator before it finished.
    CANCELLED = "cancelled"


ACTIVE = (Status.QUEUED.value, Status.RUNNING.value)
FINAL = (Status.SUCCEEDED.value, Status.FAILED.value, Status.CANCELLED.value)


class JobRow(Base):
    """One durable job."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    tenant: Mapped[str] = mapped_column(String(200))
    principal: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(DateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    timeout_at: Mapped[datetime | None] = mapped_column(DateTime)
    progress: Mapped[Any | None] = mapped_column(JSON)
    checkpoint: Mapped[Any | None] = mapped_column(JSON)
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    exclusive_key: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index(
            "ix_jobs_claim",
            "run_after",
            "created_at",
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index(
            "uq_jobs_exclusive_active",
            "exclusive_key",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running') AND exclusive_key IS NOT NULL"),
            postgresql_where=text("status IN ('queued', 'running') AND exclusive_key IS NOT NULL"),
        ),
        # Only keyed jobs: most jobs have no key, and an entry each would cost every insert.
        Index(
            "uq_jobs_idempotency",
            "tenant",
            "kind",
            "idempotency_key",
            unique=True,
            sqlite_where=text("idempotency_key IS NOT NULL"),
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_jobs_tenant_kind_created", "tenant", "kind", "created_at"),
    )


@dataclass(frozen=True)
class Job:
    """An immutable snapshot of a job row."""

    id: str
    kind: str
    tenant: str
    principal: str | None
    payload: Any
    status: Status
    attempts: int
    max_attempts: int
    run_after: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    timeout_at: datetime | None
    progress: Any | None
    checkpoint: Any | None
    result: Any | None
    error: str | None
    exclusive_key: str | None
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: False when enqueue returned an existing job for the same idempotency key.
    created: bool = field(default=True, compare=False)

    @classmethod
    def from_row(cls, row: JobRow, *, created: bool = True) -> Job:
        """Snapshot an ORM row."""
        return cls(
            id=row.id,
            kind=row.kind,
            tenant=row.tenant,
            principal=row.principal,
            payload=row.payload,
            status=Status(row.status),
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            run_after=row.run_after,
            lease_owner=row.lease_owner,
            lease_expires_at=row.lease_expires_at,
            timeout_at=row.timeout_at,
            progress=row.progress,
            checkpoint=row.checkpoint,
            result=row.result,
            error=row.error,
            exclusive_key=row.exclusive_key,
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
            updated_at=row.updated_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            created=created,
        )


#: the columns a freshly enqueued job does not set
_EMPTY: dict[str, Any] = {
    "lease_owner": None,
    "lease_expires_at": None,
    "timeout_at": None,
    "progress": None,
    "checkpoint": None,
    "result": None,
    "error": None,
    "exclusive_key": None,
    "idempotency_key": None,
    "started_at": None,
    "finished_at": None,
}


class _LazySavepoint:
    """One batch job's savepoint in the shared transaction, begun only when first needed."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._nested: Any = None

    def open(self) -> Session:
        """The shared session, inside this job's savepoint."""
        if self._nested is None:
            self._nested = self._session.begin_nested()
        return self._session

    def release(self) -> None:
        """Keep the job's writes (flushes them; errors surface here)."""
        if self._nested is not None:
            self._nested.commit()

    def rollback(self) -> None:
        """Undo the job's writes."""
        if self._nested is not None and self._nested.is_active:
            self._nested.rollback()


#: session.info flags for the commit hooks: wake local workers, NOTIFY remote ones
_ENQUEUED_FLAGS = {"writegate_enqueued": True}


def new_job_id() -> str:
    """A new job id: a UUIDv7, so ids inserted together land on the same index pages."""
    return str(uuid_utils.uuid7())


#: the columns a new job's INSERT gives, in `_row` order
_BATCH_COLUMNS = (
    "id",
    "kind",
    "tenant",
    "principal",
    "payload",
    "status",
    "attempts",
    "max_attempts",
    "run_after",
    "created_at",
    "updated_at",
    "exclusive_key",
)


def _row(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[c] for c in _BATCH_COLUMNS)


def _fresh(values: dict[str, Any]) -> Job:
    """The Job just inserted with these column values."""
    # A frozen dataclass's __init__ sets each of its 23 fields through object.__setattr__;
    # filling the new instance's __dict__ directly builds the same Job in a quarter of the
    # time, which counts for a batch of accepts on the commit thread.
    job = object.__new__(Job)
    fields = job.__dict__
    fields.update(_EMPTY)
    fields.update(values)
    fields["status"] = Status.QUEUED
    fields["created"] = True
    return job


def _claimed(names: Sequence[str], row: Sequence[Any]) -> Job:
    """The Job of a row read straight from the driver, columns in `names` order."""
    job = object.__new__(Job)
    fields = job.__dict__
    fields.update(zip(names, row, strict=True))
    fields["status"] = Status(fields["status"])
    fields["created"] = True
    return job


@dataclass(frozen=True)
class NewJob:
    """One job for `JobManager.enqueue_many`."""

    kind: str
    payload: Any
    tenant: str
    principal: str | None = None
    job_id: str | None = None
    max_attempts: int | None = None
    run_after: datetime | None = None
    #: at most one queued or running job holds a given key
    exclusive_key: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed attempt is retried."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 300.0


class JobManager:
    """Every job state change goes through here."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        lease_seconds: float = 30.0,
        timeout_seconds: float = 600.0,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        #: wakes this process's worker after a `defer` (a session's commit hook does it otherwise)
        self.wake = wake or (lambda: None)
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.lease_seconds = lease_seconds
        self.timeout_seconds = timeout_seconds
        self.policies: dict[str, RetryPolicy] = {}
        table = JobRow.metadata.tables["jobs"]
        self._insert = insert(table)
        self._insert_batch = self.insert_returning()
        self._holders = select(table.c.exclusive_key, table.c.id).where(
            InValues(table.c.exclusive_key, "h_keys"), table.c.status.in_(ACTIVE)
        )
        self._discard = delete(table).where(
            InValues(table.c.id, "d_ids"), table.c.status == Status.QUEUED.value
        )
        # Marks a batch's succeeded jobs in one executemany (rows are locked by the batch).
        self._complete_many = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.status == Status.RUNNING.value,
                table.c.lease_owner == bindparam("b_owner"),
            )
            .values(
                status=Status.SUCCEEDED.value,
                result=bindparam("b_result", type_=table.c.result.type),
                error=None,
                lease_owner=None,
                lease_expires_at=None,
                finished_at=bindparam("b_now"),
                updated_at=bindparam("b_now"),
            )
        )
        # The claim's two statements, built once: building and cache-keying them per claim,
        # and the ORM's UPDATE ... RETURNING path, cost more than their round trips.
        pick = (
            select(table.c.id)
            .where(
                table.c.status == Status.QUEUED.value,
                table.c.run_after <= bindparam("c_now", type_=table.c.run_after.type),
                InValues(table.c.kind, "c_kinds"),
            )
            .order_by(table.c.run_after, table.c.created_at)
            .limit(bindparam("c_limit", type_=Integer))
        )
        self._pick = pick.with_for_update(skip_locked=True) if db.is_postgres else pick
        # Pick and take in one statement. On PostgreSQL the pick is a MATERIALIZED CTE: run
        # exactly once, locking its rows with SKIP LOCKED. As an `IN (sub-select)` the planner
        # may re-run it per outer row (a nested-loop semi join), and every run locks and
        # returns other rows - a claim of 10 once took every queued job. SQLite evaluates an
        # uncorrelated IN list once, and its writer is alone anyway (BEGIN IMMEDIATE).
        if db.is_postgres:
            picked = self._pick.cte("picked").prefix_with("MATERIALIZED")
            claimed = table.c.id == picked.c.id
        else:
            claimed = table.c.id.in_(self._pick.scalar_subquery())
        self._pick_and_take = (
            update(table)
            .where(claimed, table.c.status == Status.QUEUED.value)
            .values(
                status=Status.RUNNING.value,
                lease_owner=bindparam("c_owner"),
                lease_expires_at=bindparam("c_lease", type_=table.c.lease_expires_at.type),
                timeout_at=bindparam("c_timeout", type_=table.c.timeout_at.type),
                attempts=table.c.attempts + 1,
                started_at=bindparam("c_now", type_=table.c.started_at.type),
                updated_at=bindparam("c_now", type_=table.c.updated_at.type),
            )
            .returning(*table.c)
        )
        self._claim = DriverStatement(db.engine.dialect, self._pick_and_take, list(table.c))
        self._claim_names = [c.name for c in table.c]

    # -- enqueue and read ---------------------------------------------------

    def enqueue(
        self,
        session: Session,
        *,
        kind: str,
        payload: Any,
        tenant: str,
        principal: str | None = None,
        job_id: str | None = None,
        max_attempts: int | None = None,
        run_after: datetime | None = None,
        exclusive_key: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Add a job inside the caller's transaction; it commits with the caller's writes."""
        if idempotency_key is None:
            spec = NewJob(
                kind, payload, tenant, principal, job_id, max_attempts, run_after, exclusive_key
            )
            if exclusive_key is None:
                # Only a duplicate id can collide, so no savepoint is needed; a Core INSERT of
                # a prepared statement skips the ORM unit of work (the hot path of accepts).
                values = self._values(spec)
                session.execute(self._insert, values)
                return self._enqueued(session, _fresh(values))
            outcome = self.enqueue_many(session, [spec])[0]
            if isinstance(outcome, ExclusiveJobExists):
                raise outcome
            return outcome
        existing = self._by_idempotency(session, tenant, kind, idempotency_key)
        if existing is not None:
            return Job.from_row(existing, created=False)
        now = self.clock.now()
        policy = self.policies.get(kind, self.policy)
        row = JobRow(
            id=job_id or new_job_id(),
            kind=kind,
            tenant=tenant,
            principal=principal,
            payload=payload,
            status=Status.QUEUED.value,
            attempts=0,
            max_attempts=max_attempts or policy.max_attempts,
            run_after=run_after or now,
            exclusive_key=exclusive_key,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            if exclusive_key is not None:
                holder = self.active_holder(session, exclusive_key)
                if holder is not None or idempotency_key is None:
                    raise ExclusiveJobExists(exclusive_key, holder) from None
            if idempotency_key is not None:
                existing = self._by_idempotency(session, tenant, kind, idempotency_key)
                if existing is not None:
                    return Job.from_row(existing, created=False)
            raise
        return self._enqueued(session, row)

    def enqueue_many(
        self, session: Session, jobs: Sequence[NewJob]
    ) -> list[Job | ExclusiveJobExists]:
        """Add jobs inside the caller's transaction with one INSERT; refusals are returned.

        A job whose exclusive key is held by an active job (or by an earlier job of the same
        call) is not written: its place in the result holds the `ExclusiveJobExists`, and the
        transaction stays usable. Any other failure (a duplicate id) raises.
        """
        return self.enqueue_many_returning(session, jobs, self._insert_batch)[0]

    def insert_returning(self, extra: str | None = None) -> BatchInsert:
        """A jobs INSERT for `enqueue_many_returning` that also returns `extra` per new job.

        `extra` is SQL over the new row's columns, such as a call of a module's own function.
        """
        # A taken exclusive key skips the row instead of failing the statement: no savepoint,
        # and a whole batch of keyed jobs is one multi-row INSERT.
        returning = "id" if extra is None else f"id, {extra}"
        return BatchInsert(
            self.db.engine.dialect,
            JobRow.metadata.tables["jobs"],
            _BATCH_COLUMNS,
            f"ON CONFLICT DO NOTHING RETURNING {returning}",
        )

    def enqueue_many_returning(
        self, session: Session, jobs: Sequence[NewJob], insert: BatchInsert
    ) -> tuple[list[Job | ExclusiveJobExists], dict[str, tuple[Any, ...]]]:
        """`enqueue_many` through `insert` (from `insert_returning`): also its extra values.

        The second item maps each written job's id to the values its INSERT returned after
        the id.
        """
        if not jobs:
            return [], {}
        now = self.clock.now()
        out, returned = self._insert_jobs(
            session, [self._values(spec, now) for spec in jobs], insert
        )
        if returned:
            session.info.update(_ENQUEUED_FLAGS)
        return out, returned

    def defer(
        self,
        *,
        kind: str,
        payload: Any,
        tenant: str,
        principal: str | None = None,
        job_id: str | None = None,
        max_attempts: int | None = None,
        run_after: datetime | None = None,
        exclusive_key: str | None = None,
    ) -> Job:
        """Add one job in a durable commit of its own (on PostgreSQL one statement, no BEGIN).

        For a job that goes with no other write, like Celery's `delay()` or procrastinate's
        `defer()`; use `enqueue` to commit a job together with business writes. Raises
        `ExclusiveJobExists` if an active job holds exclusive_key, and writes nothing then.
        """
        spec = NewJob(
            kind, payload, tenant, principal, job_id, max_attempts, run_after, exclusive_key
        )
        with self.db.statement() as conn:
            outcome = self._insert_jobs(conn, [self._values(spec)], self._insert_batch)[0][0]
        if isinstance(outcome, ExclusiveJobExists):
            raise outcome
        self.wake()
        return outcome

    def _insert_jobs(
        self, on: Session | Connection, rows: list[dict[str, Any]], insert: BatchInsert
    ) -> tuple[list[Job | ExclusiveJobExists], dict[str, tuple[Any, ...]]]:
        """One INSERT: each row's Job or held-key refusal, and what it returned after each id."""
        written = {r[0]: tuple(r[1:]) for r in insert.execute(on, [_row(v) for v in rows])}
        refused = [r for r in rows if r["id"] not in written]
        holders: dict[str, str] = {}
        if refused:
            keys = [r["exclusive_key"] for r in refused if r["exclusive_key"] is not None]
            holders = dict(on.execute(self._holders, {"h_keys": keys}).all())
            orphans = [r["id"] for r in refused if r["exclusive_key"] not in holders]
            if orphans and on.scalar(select(JobRow.id).where(JobRow.id.in_(orphans))):
                raise IntegrityError("INSERT INTO jobs", None, Exception("duplicate job id"))
        out: list[Job | ExclusiveJobExists] = []
        for values in rows:
            if values["id"] in written:
                out.append(_fresh(values))
            else:
                key = values["exclusive_key"]
                out.append(ExclusiveJobExists(key, holders.get(key)))
        return out, written

    def discard(self, session: Session, job_ids: Sequence[str]) -> None:
        """Delete jobs this transaction enqueued and then found it must refuse."""
        if job_ids:
            session.connection().execute(self._discard, {"d_ids": list(job_ids)})

    def _values(self, spec: NewJob, now: datetime | None = None) -> dict[str, Any]:
        now = now or self.clock.now()
        return {
            "id": spec.job_id or new_job_id(),
            "kind": spec.kind,
            "tenant": spec.tenant,
            "principal": spec.principal,
            "payload": spec.payload,
            "status": Status.QUEUED.value,
            "attempts": 0,
            "max_attempts": spec.max_attempts
            or self.policies.get(spec.kind, self.policy).max_attempts,
            "run_after": spec.run_after or now,
            "created_at": now,
            "updated_at": now,
            "exclusive_key": spec.exclusive_key,
        }

    async def enqueue_grouped(
        self,
        *,
        kind: str,
        payload: Any,
        tenant: str,
        principal: str | None = None,
        job_id: str | None = None,
        max_attempts: int | None = None,
        run_after: datetime | None = None,
    ) -> Job:
        """Enqueue one job in its own durable commit, shared with concurrent callers.

        The fast path of an accept endpoint: returns once the job row is committed (group
        commit: one COMMIT, one fsync, and one multi-row INSERT for every job queued while
        the previous commit was in flight). For exclusive or idempotency keys, or to write
        business rows in the same transaction, use `db.group_write_async` with `enqueue`.
        """
        spec = NewJob(kind, payload, tenant, principal, job_id, max_attempts, run_after)
        job: Job = await self.db.group_many_async(self.enqueue_many, spec)
        return job

    def _enqueued(self, session: Session, row: JobRow | Job) -> Job:
        # Wakes this process's worker after COMMIT; on PostgreSQL the jobs table's statement
        # trigger sends the NOTIFY (migration core_0002), with no round trip of its own.
        session.info.update(_ENQUEUED_FLAGS)
        return row if isinstance(row, Job) else Job.from_row(row)

    def _by_idempotency(self, session: Session, tenant: str, kind: str, key: str) -> JobRow | None:
        return session.scalar(
            select(JobRow).where(
                JobRow.tenant == tenant, JobRow.kind == kind, JobRow.idempotency_key == key
            )
        )

    def active_holder(self, session: Session, exclusive_key: str) -> str | None:
        """Id of the active job holding exclusive_key, if any."""
        return session.scalar(
            select(JobRow.id).where(
                JobRow.exclusive_key == exclusive_key, JobRow.status.in_(ACTIVE)
            )
        )

    def get(self, session: Session, job_id: str, *, tenant: str | None = None) -> Job | None:
        """One job; None if absent or (when tenant is given) another tenant's."""
        row = session.get(JobRow, job_id)
        if row is None or (tenant is not None and row.tenant != tenant):
            return None
        return Job.from_row(row)

    def find(
        self,
        session: Session,
        *,
        tenant: str | None = None,
        status: Status | str | None = None,
        kind: str | None = None,
        kinds: Iterable[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs, newest first, filtered."""
        q = select(JobRow)
        if tenant is not None:
            q = q.where(JobRow.tenant == tenant)
        if status is not None:
            q = q.where(JobRow.status == Status(status).value)
        if kind is not None:
            q = q.where(JobRow.kind == kind)
        if kinds is not None:
            q = q.where(JobRow.kind.in_(list(kinds)))
        q = q.order_by(JobRow.created_at.desc(), JobRow.id).limit(limit).offset(offset)
        return [Job.from_row(r) for r in session.scalars(q)]

    def counts(self) -> dict[str, int]:
        """Number of jobs per status."""
        from sqlalchemy import func

        with self.db.read() as s:
            rows = s.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all()
        return {str(st): int(n) for st, n in rows}

    # -- worker side ----------------------------------------------------------

    def claim(self, worker_id: str, kinds: Sequence[str], limit: int) -> list[Job]:
        """Atomically take up to `limit` due jobs for this worker."""
        if limit <= 0 or not kinds:
            return []
        # One UPDATE that picks and takes: on PostgreSQL one round trip, with no BEGIN/COMMIT.
        with self.db.statement() as conn:
            return self._claim_in(conn, worker_id, kinds, limit, self.clock.now())

    def _claim_in(
        self, conn: Connection, worker_id: str, kinds: Sequence[str], limit: int, now: datetime
    ) -> list[Job]:
        params: dict[str, Any] = {
            "c_now": now,
            "c_kinds": list(kinds),
            "c_limit": limit,
            "c_owner": worker_id,
            "c_lease": now + timedelta(seconds=self.lease_seconds),
            "c_timeout": now + timedelta(seconds=self.timeout_seconds),
        }
        names = self._claim_names
        jobs = [_claimed(names, r) for r in self._claim.fetch(conn, params)]
        jobs.sort(key=lambda j: (j.run_after, j.created_at))
        return jobs

    def run_batch(
        self,
        worker_id: str,
        kinds: Sequence[str],
        limit: int,
        run: Callable[[Callable[[], Session], Job], Any],
    ) -> list[tuple[Job, Status]]:
        """Claim, run and finish up to `limit` short jobs in ONE transaction (one commit).

        For handlers that are quick and only write through the session: run(open, job) runs
        a job, where open() gives it the shared session inside a savepoint of its own (made
        only if it asks, so a job that writes nothing costs no round trip). A failing job
        is rolled back to its savepoint and failed/retried with its error; every job that
        succeeded is marked so by one multi-row UPDATE. The rows stay locked by this transaction
        (SQLite: the single writer; PostgreSQL: FOR UPDATE SKIP LOCKED) until it commits,
        so no other worker can take them; a crash before COMMIT leaves them queued with no
        attempt counted and none of their writes.
        """
        if limit <= 0 or not kinds:
            return []
        now = self.clock.now()
        done: list[tuple[Job, Status]] = []
        with self.db.write() as s:
            succeeded: list[dict[str, Any]] = []
            for job in self._claim_in(s.connection(), worker_id, kinds, limit, now):
                savepoint = _LazySavepoint(s)
                try:
                    result = run(savepoint.open, job)
                    savepoint.release()
                except Exception as exc:
                    savepoint.rollback()
                    permanent = isinstance(exc, PermanentJobError | UnknownJobKind)
                    message = str(exc) or type(exc).__name__
                    status = self._fail_in(s, job, message, retryable=not permanent, now=now)
                    done.append((job, status))
                    continue
                succeeded.append({"b_id": job.id, "b_result": result})
                done.append((job, Status.SUCCEEDED))
            if succeeded:
                finished = self.clock.now()
                for row in succeeded:
                    row["b_now"] = finished
                    row["b_owner"] = worker_id
                s.execute(self._complete_many, succeeded)
        return done

    def _fail_in(
        self, s: Session, job: Job, error: str, *, retryable: bool, now: datetime
    ) -> Status:
        policy = self.policies.get(job.kind, self.policy)
        values: dict[str, Any] = {
            "error": error[:10_000],
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if retryable and job.attempts < job.max_attempts:
            delay = backoff_seconds(job.attempts, policy.backoff_base, policy.backoff_max)
            values.update(status=Status.QUEUED.value, run_after=now + timedelta(seconds=delay))
            s.info["writegate_enqueued"] = True
        else:
            values.update(status=Status.FAILED.value, finished_at=now)
        s.execute(
            update(JobRow)
            .where(JobRow.id == job.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return Status(values["status"])

    def _fence(self, worker_id: str, job: Job) -> Any:
        # The attempt number is part of the fence: a worker that re-claimed its own
        # timed-out job must not let the stale attempt commit over the live one.
        return and_(
            JobRow.id == job.id,
            JobRow.status == Status.RUNNING.value,
            JobRow.lease_owner == worker_id,
            JobRow.attempts == job.attempts,
        )

    def heartbeat(self, worker_id: str, job_ids: Sequence[str]) -> set[str]:
        """Extend the leases this worker still holds; return the ids still owned."""
        if not job_ids:
            return set()
        now = self.clock.now()
        with self.db.write() as s:
            stmt = (
                update(JobRow)
                .where(
                    JobRow.id.in_(list(job_ids)),
                    JobRow.status == Status.RUNNING.value,
                    JobRow.lease_owner == worker_id,
                    or_(JobRow.timeout_at.is_(None), JobRow.timeout_at > now),
                )
                .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds))
                .returning(JobRow.id)
                .execution_options(synchronize_session=False)
            )
            return set(s.scalars(stmt))

    def checkpoint(
        self,
        session: Session,
        job: Job,
        worker_id: str,
        *,
        progress: Any = None,
        checkpoint: Any = None,
    ) -> None:
        """Store progress and resume state in the caller's transaction, fenced by the lease.

        A checkpoint is progress, so it also restarts the attempt's timeout: a long job that
        keeps checkpointing is never mistaken for a hung one.
        """
        now = self.clock.now()
        values: dict[str, Any] = {
            "updated_at": now,
            "lease_expires_at": now + timedelta(seconds=self.lease_seconds),
            "timeout_at": now + timedelta(seconds=self.timeout_seconds),
        }
        if progress is not None:
            values["progress"] = progress
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
        self._fenced_update(session, job, worker_id, values)

    def _fenced_update(
        self, session: Session, job: Job, worker_id: str, values: dict[str, Any]
    ) -> None:
        res = session.execute(
            update(JobRow)
            .where(self._fence(worker_id, job))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(job.id)

    def complete(
        self, session: Session, job: Job, worker_id: str, result: Any, progress: Any = None
    ) -> None:
        """Mark the job succeeded in the handler's own transaction (fenced by the lease)."""
        now = self.clock.now()
        values: dict[str, Any] = {
            "status": Status.SUCCEEDED.value,
            "result": result,
            "error": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "finished_at": now,
            "updated_at": now,
        }
        if progress is not None:
            values["progress"] = progress
        self._fenced_update(session, job, worker_id, values)

    def fail(self, job: Job, worker_id: str, error: str, *, retryable: bool = True) -> Status:
        """Record a failed attempt: back to the queue with backoff, or failed for good."""
        now = self.clock.now()
        policy = self.policies.get(job.kind, self.policy)
        with self.db.write() as s:
            row = s.get(JobRow, job.id, with_for_update=self.db.is_postgres)
            if (
                row is None
                or row.status != Status.RUNNING.value
                or row.lease_owner != worker_id
                or row.attempts != job.attempts
            ):
                return Status(row.status) if row is not None else Status.FAILED
            row.error = error[:10_000]
            row.lease_owner = None
            row.lease_expires_at = None
            row.updated_at = now
            if retryable and row.attempts < row.max_attempts:
                delay = backoff_seconds(row.attempts, policy.backoff_base, policy.backoff_max)
                row.status = Status.QUEUED.value
                row.run_after = now + timedelta(seconds=delay)
                s.info["writegate_enqueued"] = True
            else:
                row.status = Status.FAILED.value
                row.finished_at = now
            return Status(row.status)

    def requeue_stalled(self) -> int:
        """Return jobs whose lease expired (worker died or hung) to the queue, or fail them."""
        now = self.clock.now()
        n = 0
        with self.db.write() as s:
            q = select(JobRow).where(
                JobRow.status == Status.RUNNING.value, JobRow.lease_expires_at < now
            )
            if self.db.is_postgres:
                q = q.with_for_update(skip_locked=True)
            for row in s.scalars(q.limit(500)):
                hung = row.timeout_at is not None and row.timeout_at <= now
                reason = "job timed out" if hung else "lease expired: worker lost"
                row.error = f"{reason} (attempt {row.attempts}, worker {row.lease_owner})"
                row.lease_owner = None
                row.lease_expires_at = None
                row.updated_at = now
                if row.attempts < row.max_attempts:
                    row.status = Status.QUEUED.value
                    row.run_after = now
                    s.info["writegate_enqueued"] = True
                else:
                    row.status = Status.FAILED.value
                    row.finished_at = now
                n += 1
        return n

    # -- operator actions -----------------------------------------------------

    def cancel(self, job_id: str, *, tenant: str | None = None) -> Job | None:
        """Cancel a queued or running job; a running job's final write is then refused."""
        now = self.clock.now()
        with self.db.write() as s:
            row = s.get(JobRow, job_id, with_for_update=self.db.is_postgres)
            if row is None or (tenant is not None and row.tenant != tenant):
                return None
            if row.status in ACTIVE:
                row.status = Status.CANCELLED.value
                row.lease_owner = None
                row.lease_expires_at = None
                row.finished_at = now
                row.updated_at = now
            return Job.from_row(row)

    def retry(self, job_id: str, *, tenant: str | None = None) -> Job | None:
        """Put a failed or cancelled job back in the queue with fresh attempts."""
        now = self.clock.now()
        with self.db.write() as s:
            row = s.get(JobRow, job_id, with_for_update=self.db.is_postgres)
            if row is None or (tenant is not None and row.tenant != tenant):
                return None
            if row.status in (Status.FAILED.value, Status.CANCELLED.value):
                row.status = Status.QUEUED.value
                row.attempts = 0
                row.run_after = now
                row.finished_at = None
                row.updated_at = now
                try:
                    with s.begin_nested():
                        s.flush()
                except IntegrityError:
                    raise ExclusiveJobExists(
                        row.exclusive_key or "", self.active_holder(s, row.exclusive_key or "")
                    ) from None
                s.info["writegate_enqueued"] = True
            return Job.from_row(row)
