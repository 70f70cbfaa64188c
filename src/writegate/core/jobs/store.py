"""What every part of the job manager shares: the database, the clock, policies, statements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from writegate.core.clock import Clock
from writegate.core.db import Database
from writegate.core.jobs.job import Job
from writegate.core.jobs.model import RetryPolicy
from writegate.core.jobs.sql import JobStatements


class Handoff(Protocol):
    """A worker of this process that starts new jobs as they are written, with no claim."""

    #: the lease owner of the jobs it takes
    worker_id: str

    def room(self, kind: str) -> int:
        """How many new jobs of kind it would start now (0 while it has a backlog)."""
        ...

    def take(self, jobs: list[Job]) -> None:
        """Run these jobs: committed as its running attempt, under its lease."""
        ...


class JobStore:
    """Shared state of `JobManager`'s parts (enqueue, lifecycle, admin)."""

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
        self.clock = clock
        self.policy = policy or RetryPolicy()
        #: per-kind policies that override `policy` (set from the registry by the worker)
        self.policies: dict[str, RetryPolicy] = {}
        self.lease_seconds = lease_seconds
        self.timeout_seconds = timeout_seconds
        #: wakes this process's worker once new jobs are committed
        self.wake = wake or (lambda: None)
        #: the worker of this process that takes new jobs as they are written (set by it)
        self.handoff: Handoff | None = None
        self.sql = JobStatements(db.engine.dialect)

    def policy_for(self, kind: str) -> RetryPolicy:
        """The retry policy of a job kind."""
        return self.policies.get(kind, self.policy)
