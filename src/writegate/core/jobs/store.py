"""What every part of the job manager shares: the database, the clock, policies, statements."""

from __future__ import annotations

from collections.abc import Callable

from writegate.core.clock import Clock
from writegate.core.db import Database
from writegate.core.jobs.model import RetryPolicy
from writegate.core.jobs.sql import JobStatements


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
        #: wakes this process's worker after a write outside a session (`defer`); a write
        #: session's commit hook does it otherwise
        self.wake = wake or (lambda: None)
        self.sql = JobStatements(db.engine.dialect)

    def policy_for(self, kind: str) -> RetryPolicy:
        """The retry policy of a job kind."""
        return self.policies.get(kind, self.policy)
