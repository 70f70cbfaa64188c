"""What a job is: its status, its row, its snapshot, a new job and its retry policy."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import uuid_utils
from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from writegate.core.db import Base
from writegate.core.retry import backoff_seconds

#: the PostgreSQL channel a jobs INSERT or re-queue notifies (migration core_0002)
NOTIFY_CHANNEL = "writegate_jobs"


class Status(enum.StrEnum):
    """Life cycle of a job."""

    #: Waiting to be claimed once run_after has passed (and the job it runs after is final).
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
    #: the job that must be final before this one is claimed (migration core_0004)
    after_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: where the job came from: {"request_id", "traceparent"} (W3C), for logs and traces
    #: (migration core_0005)
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True))

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
        # Newest-first keyset pages (the console) walk it from either end in the same time:
        # jobs.id is a UUIDv7 for most kinds but not all, so it alone does not order by age.
        Index("ix_jobs_created_id", "created_at", "id"),
        Index(
            "ix_jobs_finished",
            "finished_at",
            sqlite_where=text("finished_at IS NOT NULL"),
            postgresql_where=text("finished_at IS NOT NULL"),
        ),
    )


#: every column, in table order: the order of a claimed row
COLUMNS = tuple(c.name for c in JobRow.__table__.columns)


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
    after_id: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: the request id and W3C traceparent of the request that enqueued it
    trace_context: dict[str, str] | None = None
    #: False when enqueue returned an existing job for the same idempotency key.
    created: bool = field(default=True, compare=False)

    @classmethod
    def from_row(cls, row: JobRow, *, created: bool = True) -> Job:
        """Snapshot an ORM row."""
        return cls.from_values(COLUMNS, [getattr(row, c) for c in COLUMNS], created=created)

    @classmethod
    def from_values(
        cls, names: Sequence[str], values: Sequence[Any], *, created: bool = True
    ) -> Job:
        """The Job of a row's values, columns in `names` order; unnamed columns are None."""
        # A frozen dataclass's __init__ sets each field through object.__setattr__; filling
        # the new instance's __dict__ builds the same Job in a quarter of the time, which
        # counts for a batch of accepts or a claim.
        job = object.__new__(cls)
        fields = job.__dict__
        fields.update(_EMPTY)
        fields.update(zip(names, values, strict=True))
        fields["status"] = Status(fields["status"])
        fields["created"] = created
        return job


_EMPTY: dict[str, Any] = dict.fromkeys(COLUMNS)


def new_job_id() -> str:
    """A new job id: a UUIDv7, so ids inserted together land on the same index pages."""
    return str(uuid_utils.uuid7())


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue."""

    kind: str
    payload: Any
    tenant: str
    principal: str | None = None
    job_id: str | None = None
    max_attempts: int | None = None
    run_after: datetime | None = None
    #: at most one queued or running job holds a given key
    exclusive_key: str | None = None
    #: a second enqueue with the same (tenant, kind, key) returns the first job
    idempotency_key: str | None = None
    #: the id of a job that must be final (succeeded, failed or cancelled) before this runs
    after_id: str | None = None
    #: {"request_id", "traceparent"} of the job's origin; None: taken from the current
    #: context (a job built outside its request's context, e.g. on a group commit thread,
    #: must carry it: `observability.context.job_origin()`)
    trace_context: dict[str, str] | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed attempt is retried."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 300.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait before the next attempt, after `attempts` attempts."""
        return backoff_seconds(attempts, self.backoff_base, self.backoff_max)
