"""Durable jobs: what a job is, its statements, and the manager of every state change."""

from writegate.core.jobs.manager import JobManager
from writegate.core.jobs.model import (
    ACTIVE,
    FINAL,
    NOTIFY_CHANNEL,
    Job,
    JobRow,
    NewJob,
    RetryPolicy,
    Status,
    new_job_id,
)

__all__ = [
    "ACTIVE",
    "FINAL",
    "NOTIFY_CHANNEL",
    "Job",
    "JobManager",
    "JobRow",
    "NewJob",
    "RetryPolicy",
    "Status",
    "new_job_id",
]
