"""The life cycle of a job: its statuses, and which of them are active or final."""

from __future__ import annotations

import enum


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
