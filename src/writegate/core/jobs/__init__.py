"""Durable jobs: what a job is, its statements, and the manager of every state change.

Names are imported on first use: `writegate jobs` reads and acts through `table`, `job`
and `operator` alone, without the ORM model or the manager.
"""

from typing import TYPE_CHECKING

from writegate.core.lazy import exports

if TYPE_CHECKING:
    from writegate.core.jobs.job import Job
    from writegate.core.jobs.lifecycle import Successes
    from writegate.core.jobs.manager import JobManager
    from writegate.core.jobs.model import JobRow, NewJob, RetryPolicy, new_job_id
    from writegate.core.jobs.status import ACTIVE, FINAL, Status
    from writegate.core.jobs.table import NOTIFY_CHANNEL

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
    "Successes",
    "new_job_id",
]

__getattr__ = exports(
    globals(),
    {
        "ACTIVE": "status",
        "FINAL": "status",
        "Status": "status",
        "JobManager": "manager",
        "Successes": "lifecycle",
        "NOTIFY_CHANNEL": "table",
        "Job": "job",
        "JobRow": "model",
        "NewJob": "model",
        "RetryPolicy": "model",
        "new_job_id": "model",
    },
)
