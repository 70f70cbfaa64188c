"""Short jobs: run in the group commit, every job of a kind in a batch with one call."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.exc import DataError, StatementError
from sqlalchemy.orm import Session

from writegate.core.exceptions import LeaseLost, PermanentJobError, UnknownJobKind
from writegate.core.jobs import Job, JobManager, Status
from writegate.core.observability import metrics, tracing
from writegate.core.observability.context import bound, job_fields
from writegate.core.worker.context import JobContext
from writegate.core.worker.registry import JobSpec, Registry

log = logging.getLogger("writegate.worker")


def span(job: Job) -> Any:
    """The tracing span of one run of a job."""
    return tracing.job_span(job.id, job.kind, job.attempts, job.trace_context)


@contextlib.contextmanager
def observed(job: Job) -> Iterator[None]:
    """A run of a job with its log fields bound and in its span; without them if they fail."""
    # The run must go on and settle the job: a handler thread that raised here kept its slot,
    # and the worker went on renewing that job's lease.
    with contextlib.ExitStack() as context:
        try:
            context.enter_context(bound(**job_fields(job)))
            context.enter_context(span(job))
        except Exception:
            log.exception("job %s: runs without its log fields and span", job.id)
        yield


def error_of(exc: BaseException) -> tuple[str, bool]:
    """The message kept for a failed attempt, and whether the attempt may be retried."""
    if isinstance(exc, StatementError):
        # Its text holds the statement and its values (a page of customers, say), and even
        # the driver's own message may quote a value; a job's error is shown to API clients
        # (BokaMera's ErrorMessage). The whole of it goes to the log. A value the database
        # refused (DataError) is refused again at every attempt.
        log.warning("database error: %s", exc)
        orig = exc.orig if exc.orig is not None else exc
        code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
        message = f"database error: {type(orig).__name__}" + (f" ({code})" if code else "")
        return message, not isinstance(exc, DataError)
    return str(exc) or type(exc).__name__, not isinstance(exc, PermanentJobError | UnknownJobKind)


def outcome_of(status: Status | None) -> str:
    """The metric outcome of a settled failure: retried, failed, or lost (not ours any more)."""
    if status is None:
        return "lost"
    return "retried" if status == Status.QUEUED else "failed"


class KindBatch:
    """The group commit's write for one short kind: its handler on the batch's jobs of that
    kind, then one completion statement for every job that succeeded.

    One object per kind, so the group commit hands it all of the kind's queued jobs at once.
    """

    def __init__(self, spec: JobSpec, manager: JobManager, worker_id: str) -> None:
        self.spec = spec
        self.manager = manager
        self.worker_id = worker_id
        #: when each job's handler last began (a replayed batch runs it again), for metrics
        self.began: dict[str, float] = {}

    def __call__(self, session: Session, jobs: list[Job]) -> list[Any]:
        """Each job's outcome: its result, or the exception that fails its attempt."""
        now = time.perf_counter()
        for job in jobs:
            self.began[job.id] = now
        ctxs = [JobContext(self.manager, job, self.worker_id, shared=session) for job in jobs]
        for job in jobs:
            with bound(**job_fields(job)):
                log.debug("job %s (%s) attempt %d started", job.id, job.kind, job.attempts)
        if self.spec.batch:
            with contextlib.ExitStack() as spans:
                for job in jobs:
                    spans.enter_context(span(job))
                outcomes = self.spec.run_batch(ctxs)
        else:
            outcomes = [self._one(ctx) for ctx in ctxs]
        done = [
            (ctx.job, out, ctx.progress)
            for ctx, out in zip(ctxs, outcomes, strict=True)
            if not isinstance(out, BaseException)
        ]
        if done and not self.manager.complete_many(session, done, self.worker_id):
            # A lease was lost. Failing every job makes the group commit replay them one by
            # one, each in a savepoint of its own: there, only the lost one fails.
            return [
                out if isinstance(out, BaseException) else LeaseLost(ctx.job.id)
                for ctx, out in zip(ctxs, outcomes, strict=True)
            ]
        return outcomes

    def _one(self, ctx: JobContext) -> Any:
        with observed(ctx.job):
            try:
                return self.spec.run(ctx)
            except Exception as exc:
                return exc


class ShortJobs:
    """A worker's short jobs: queued in the group commit, settled when their batch commits."""

    def __init__(
        self,
        manager: JobManager,
        registry: Registry,
        worker_id: str,
        in_flight: int,
        on_done: Callable[[], None],
    ) -> None:
        self.manager = manager
        self.registry = registry
        self.worker_id = worker_id
        #: short jobs queued in the group commit at once, at most
        self.in_flight = in_flight
        self._on_done = on_done
        self._writes: dict[str, KindBatch] = {}
        #: the jobs queued or running in the group commit, or settling a failure
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def kinds(self) -> list[str]:
        """The short kinds registered now."""
        return self.registry.kinds(short=True)

    def room(self) -> int:
        """How many more short jobs may be queued now."""
        with self._lock:
            return self.in_flight - len(self._active)

    def active(self) -> list[str]:
        """Ids of this worker's short jobs not settled yet: their leases must be kept too."""
        with self._lock:
            return list(self._active)

    def run(self, job: Job) -> None:
        """Queue a claimed job in the group commit; it is settled when its batch commits."""
        with self._lock:
            self._active.add(job.id)
        write = self._writes.get(job.kind)
        if write is None:
            write = KindBatch(self.registry.get(job.kind), self.manager, self.worker_id)
            self._writes[job.kind] = write
        future = self.manager.db.group.submit_many(write, job)
        future.add_done_callback(lambda f: self._ran(job, f, write.began.pop(job.id, 0.0)))

    def _ran(self, job: Job, future: concurrent.futures.Future[Any], began: float) -> None:
        # Runs on the commit thread once the job's batch committed (or was rolled back).
        seconds = time.perf_counter() - began if began else 0.0
        exc = future.exception()
        with bound(**job_fields(job)):
            if exc is None or isinstance(exc, LeaseLost):
                if exc is not None:
                    log.warning("job %s: lease lost; its writes were rolled back", job.id)
                else:
                    log.debug("job %s (%s) succeeded", job.id, job.kind)
                metrics.job_finished(job.kind, "succeeded" if exc is None else "lost", seconds)
                self._done(job)
                return
            message, retryable = error_of(exc)
            log.info("job %s attempt %d failed: %s", job.id, job.attempts, message)
        settle = self.manager.db.group.submit(
            lambda s: self.manager.settle_failure(
                s, job, self.worker_id, message, retryable=retryable
            )
        )

        def settled(f: concurrent.futures.Future[Status | None]) -> None:
            status = None if f.exception() is not None else f.result()
            metrics.job_finished(job.kind, outcome_of(status), seconds)
            self._done(job)

        settle.add_done_callback(settled)

    def _done(self, job: Job) -> None:
        with self._lock:
            self._active.discard(job.id)
        self._on_done()
