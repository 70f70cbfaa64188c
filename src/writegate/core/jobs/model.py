"""A job's ORM row, a new job and its retry policy (its snapshot, `Job`, is in `job.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import uuid_utils
from sqlalchemy.orm import Mapped

from writegate.core.db.base import Base
from writegate.core.jobs.status import ACTIVE, FINAL, Status
from writegate.core.jobs.table import JOBS, NOTIFY_CHANNEL, add_partial_indexes
from writegate.core.retry import backoff_seconds

__all__ = ["ACTIVE", "FINAL", "NOTIFY_CHANNEL", "JobRow", "NewJob", "RetryPolicy", "Status"]

add_partial_indexes()


class JobRow(Base):
    """One durable job (the ORM's view of `table.JOBS`)."""

    __table__ = JOBS

    id: Mapped[str]
    kind: Mapped[str]
    tenant: Mapped[str]
    principal: Mapped[str | None]
    payload: Mapped[Any]
    status: Mapped[str]
    attempts: Mapped[int]
    max_attempts: Mapped[int]
    run_after: Mapped[datetime]
    lease_owner: Mapped[str | None]
    lease_expires_at: Mapped[datetime | None]
    timeout_at: Mapped[datetime | None]
    progress: Mapped[Any | None]
    checkpoint: Mapped[Any | None]
    result: Mapped[Any | None]
    error: Mapped[str | None]
    exclusive_key: Mapped[str | None]
    idempotency_key: Mapped[str | None]
    after_id: Mapped[str | None]
    waiting_on: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    trace_context: Mapped[dict[str, str] | None]


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
