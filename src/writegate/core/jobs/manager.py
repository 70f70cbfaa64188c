"""`JobManager`: every database call about jobs, in one object."""

from __future__ import annotations

from writegate.core.jobs.admin import Admin
from writegate.core.jobs.enqueue import Enqueue
from writegate.core.jobs.lifecycle import Lifecycle


class JobManager(Enqueue, Lifecycle, Admin):
    """Every job state change goes through here: enqueue, the run's lifecycle, admin."""
