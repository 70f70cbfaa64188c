"""What an operator does with jobs: look them up, cancel, retry, prune."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from writegate.core.exceptions import ExclusiveJobExists
from writegate.core.jobs import operator
from writegate.core.jobs.job import COLUMNS, Job
from writegate.core.jobs.model import FINAL, JobRow, Status
from writegate.core.jobs.prune import prune
from writegate.core.jobs.store import JobStore


class Admin(JobStore):
    """Reads and operator actions."""

    def get(self, session: Session, job_id: str, *, tenant: str | None = None) -> Job | None:
        """One job; None if absent or (when tenant is given) another tenant's."""
        row = session.get(JobRow, job_id)
        if row is None or (tenant is not None and row.tenant != tenant):
            return None
        return Job.from_row(row)

    async def read(self, job_id: str, *, tenant: str | None = None) -> Job | None:
        """`get` on the async read path (`db.reads`): no session, no thread."""
        row = await self.db.reads.first(self.sql.by_id, {"j_id": job_id})
        if row is None or (tenant is not None and row.tenant != tenant):
            return None
        return Job.from_values(COLUMNS, tuple(row))

    async def read_active_holder(self, exclusive_key: str) -> Job | None:
        """The active job holding exclusive_key, if any, on the async read path."""
        row = await self.db.reads.first(self.sql.active_job, {"h_key": exclusive_key})
        return None if row is None else Job.from_values(COLUMNS, tuple(row))

    def active_holders(self, session: Session, keys: Iterable[str]) -> dict[str, str]:
        """The active job holding each of these exclusive keys, where one does."""
        rows = self.sql.holders.fetch(session, {"h_keys": list(keys)})
        return {str(key): str(job_id) for key, job_id, _status in rows}

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

    def cancel(self, job_id: str, *, tenant: str | None = None) -> Job | None:
        """Cancel a queued or running job; a running job's final write is then refused."""
        with self.db.write() as s:
            outcome = operator.cancel_one(s, job_id, tenant=tenant, now=self.clock.now())
            operator.announce(s, [outcome], self.wake)
            return self.get(s, job_id, tenant=tenant)

    def retry(self, job_id: str, *, tenant: str | None = None) -> Job | None:
        """Put a failed or cancelled job back in the queue with fresh attempts.

        Raises `ExclusiveJobExists` (and changes nothing) while another active job holds its
        exclusive key; a job in any other status is returned unchanged.
        """
        with self.db.write() as s:
            outcome = operator.retry_one(s, job_id, tenant=tenant, now=self.clock.now())
            if outcome.reason == "key_held":
                job = self.get(s, job_id)
                raise ExclusiveJobExists(job.exclusive_key or "" if job else "", outcome.holder)
            operator.announce(s, [outcome], self.wake)
            return self.get(s, job_id, tenant=tenant)

    def prune(
        self,
        older_than: timedelta,
        *,
        statuses: Sequence[str] = FINAL,
        batch: int = 1000,
        dry_run: bool = False,
    ) -> int:
        """Delete final jobs that finished more than `older_than` ago, in short batches."""
        before = self.clock.now() - older_than
        engine = self.db.engine if dry_run else self.db.write_engine
        with engine.connect() as conn:
            return prune(conn, before, statuses=statuses, batch=batch, dry_run=dry_run)
