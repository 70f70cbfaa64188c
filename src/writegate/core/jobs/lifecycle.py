"""A job's run: claim, heartbeat, checkpoint, complete, hand back; one way to settle a failure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from writegate.core.db import after_commit
from writegate.core.exceptions import LeaseLost
from writegate.core.jobs.job import COLUMNS, Job
from writegate.core.jobs.sql import claim_params, fence
from writegate.core.jobs.status import Status
from writegate.core.jobs.store import JobStore

#: how much of an error message is kept
ERROR_CHARS = 10_000


class Lifecycle(JobStore):
    """Every state change of a running job."""

    def claim(
        self,
        worker_id: str,
        kinds: Sequence[str],
        limit: int,
        *,
        also: tuple[Sequence[str], int] = ((), 0),
    ) -> list[Job]:
        """Atomically take up to `limit` due jobs of these kinds for this worker, and in the
        same statement up to `also`'s limit of its kinds (a worker's other class of kinds)."""
        groups = [(list(k), n) for k, n in ((kinds, limit), also) if k and n > 0]
        if not groups:
            return []

        def take(conn: Connection) -> list[tuple[Any, ...]]:
            # The time is read when the claim runs, not when it was queued behind a batch.
            return self.sql.claim.fetch(conn, self.claim_params(worker_id, groups))

        # One UPDATE that picks and takes. On SQLite, in the group commit: the claim then
        # shares its COMMIT (and fsync) with the API's writes instead of taking turns for
        # the one writer. On PostgreSQL, alone in autocommit: in a shared batch it would lock
        # job rows before the batch's other writers lock theirs (an accept locks its record,
        # then its job's key), the opposite order, and the two deadlocked. Its commit need
        # not wait for the WAL flush: a claim lost in a server crash leaves the job queued,
        # and its running attempt is then one that lost its lease (its fenced writes are
        # refused; the job runs again).
        if self.db.is_sqlite:
            rows = self.db.group.run_sync(lambda s: take(s.connection()))
        else:
            with self.db.statement(flush=False) as conn:
                rows = take(conn)
        jobs = [Job.from_values(COLUMNS, r) for r in rows]
        jobs.sort(key=lambda j: (j.run_after, j.created_at))
        return jobs

    def claim_params(
        self, worker_id: str, groups: Sequence[tuple[Sequence[str], int]]
    ) -> dict[str, Any]:
        """The parameters of the claim statement (`sql.claim`) for this worker, now."""
        return claim_params(
            worker_id, self.clock.now(), self.lease_seconds, self.timeout_seconds, groups
        )

    def heartbeat(self, worker_id: str, job_ids: Sequence[str]) -> set[str]:
        """Extend the leases this worker still holds; return the ids still owned."""
        if not job_ids:
            return set()
        now = self.clock.now()
        params = {
            "b_ids": list(job_ids),
            "b_owner": worker_id,
            "b_now": now,
            "b_lease": now + timedelta(seconds=self.lease_seconds),
        }
        with self.db.write() as s:
            conn = s.connection()
            owned = set(conn.execute(self.sql.heartbeat, params).scalars())
            if len(owned) < len(job_ids):  # skipped while locked (PostgreSQL), or lost
                rest = [i for i in job_ids if i not in owned]
                owned |= set(conn.execute(self.sql.held, {**params, "b_ids": rest}).scalars())
            return owned

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
        if not self._fenced(session, job, worker_id, values):
            raise LeaseLost(job.id)

    def complete(
        self, session: Session, job: Job, worker_id: str, result: Any, progress: Any = None
    ) -> None:
        """Mark the job succeeded in the handler's own transaction (fenced by the lease)."""
        if not self.complete_many(session, [(job, result, progress)], worker_id):
            raise LeaseLost(job.id)

    def complete_many(
        self, session: Session, done: Sequence[tuple[Job, Any, Any]], worker_id: str
    ) -> bool:
        """Mark each (job, result, progress) succeeded, in the caller's transaction, with one
        statement per form (an executemany: one round trip on PostgreSQL's pipeline).

        Fenced by each lease: False if any attempt is no longer this worker's (the caller
        then rolls back; which one is not told apart here).
        """
        now = self.clock.now()
        plain, progressed = [], []
        for job, result, progress in done:
            params = {"c_result": result, "c_now": now, **fence(job.id, worker_id, job.attempts)}
            if progress is None:
                plain.append(params)
            else:
                progressed.append({**params, "c_progress": progress})
        conn = session.connection()
        changed = 0
        for stmt, rows in ((self.sql.complete, plain), (self.sql.complete_progress, progressed)):
            if rows:
                changed += stmt.execute_many(conn, rows)
        if changed != len(done):
            return False
        self._release(session, [job.id for job, _, _ in done])
        return True

    def settle_failure(
        self,
        session: Session,
        job: Job,
        worker_id: str,
        error: str,
        *,
        retryable: bool = True,
        delay: float | None = None,
    ) -> Status | None:
        """Record a failed attempt: back to the queue (after `delay`, default the policy's
        backoff) while attempts remain and it is retryable, else failed for good.

        Returns the new status, or None if this worker no longer holds the job.
        """
        now = self.clock.now()
        values: dict[str, Any] = {
            "error": error[:ERROR_CHARS],
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if retryable and job.attempts < job.max_attempts:
            wait = self.policy_for(job.kind).delay(job.attempts) if delay is None else delay
            values.update(status=Status.QUEUED.value, run_after=now + timedelta(seconds=wait))
        else:
            values.update(status=Status.FAILED.value, finished_at=now)
        if not self._fenced(session, job, worker_id, values):
            return None
        if values["status"] == Status.QUEUED.value:
            after_commit(session, self.wake)
        else:
            self._release(session, [job.id])
        return Status(values["status"])

    def fail(
        self, job: Job, worker_id: str, error: str, *, retryable: bool = True
    ) -> Status | None:
        """`settle_failure` in a shared commit of its own."""
        return self.db.group.run_sync(
            lambda s: self.settle_failure(s, job, worker_id, error, retryable=retryable)
        )

    def hand_back(self, session: Session, job: Job, worker_id: str) -> bool:
        """Give a claimed job back to the queue at once, its attempt not counted (shutdown)."""
        now = self.clock.now()
        values = {
            "status": Status.QUEUED.value,
            "attempts": job.attempts - 1,
            "lease_owner": None,
            "lease_expires_at": None,
            "run_after": now,
            "updated_at": now,
        }
        handed = self._fenced(session, job, worker_id, values)
        if handed:
            after_commit(session, self.wake)
        return handed

    def requeue_stalled(self) -> int:
        """Settle the attempts whose lease expired (worker died or hung): retried at once."""
        now = self.clock.now()
        with self.db.write() as s:
            stalled = [Job.from_row(r) for r in s.scalars(self.sql.stalled, {"s_now": now})]
            for job in stalled:
                hung = job.timeout_at is not None and job.timeout_at <= now
                reason = "job timed out" if hung else "lease expired: worker lost"
                error = f"{reason} (attempt {job.attempts}, worker {job.lease_owner})"
                self.settle_failure(s, job, job.lease_owner or "", error, delay=0)
        return len(stalled)

    def release_orphans(self) -> int:
        """Release the jobs still waiting on a job that is final or gone; how many.

        A job parked in a transaction that committed after its dependency's release (two
        processes on PostgreSQL) is released here, by the reaper, at the latest. The look
        is a read, so it never holds SQLite's writer (`python -m bench.claim_deps` times it).
        """
        with self.db.read() as s:
            done = list(s.execute(self.sql.orphaned).scalars())
        if not done:
            return 0
        with self.db.write() as s:
            return self.sql.release.execute(s.connection(), {"r_ids": done})

    def _release(self, session: Session, job_ids: list[str]) -> None:
        """Make the jobs waiting on these final ones claimable; wake the worker if any were."""
        if self.sql.release.execute(session.connection(), {"r_ids": job_ids}):
            after_commit(session, self.wake)

    def _fenced(self, session: Session, job: Job, worker_id: str, values: dict[str, Any]) -> bool:
        """Update the job if this worker still holds this attempt; whether it did."""
        stmt = self.sql.fenced.values(**values)
        res = session.connection().execute(stmt, fence(job.id, worker_id, job.attempts))
        return bool(res.rowcount == 1)


class Successes:
    """The group write that records threaded jobs' successes: one `complete_many` a batch.

    Its items are (job, result, progress). One object per worker, so the group commit hands
    it every success queued in a batch at once (one statement for them all, where one group
    write per job would cost a savepoint's round trips each).
    """

    def __init__(self, lifecycle: Lifecycle, worker_id: str) -> None:
        self.lifecycle = lifecycle
        self.worker_id = worker_id

    def __call__(self, session: Session, done: list[tuple[Job, Any, Any]]) -> list[Any]:
        """None for each success recorded; LeaseLost for each if any lease was lost."""
        if self.lifecycle.complete_many(session, done, self.worker_id):
            return [None] * len(done)
        # Failing every one makes the group commit replay each alone, in a savepoint of its
        # own: there, only the lost one fails.
        return [LeaseLost(job.id) for job, _, _ in done]
