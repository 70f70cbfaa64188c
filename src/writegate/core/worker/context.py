"""What a job handler gets: the job, its transactions, progress and checkpoints."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from writegate.core.clock import Clock
from writegate.core.jobs import Job, JobManager, Successes

T = TypeVar("T")


class JobContext:
    """What a handler gets: the job, and the transactions it may use."""

    def __init__(
        self,
        manager: JobManager,
        job: Job,
        worker_id: str,
        shared: Session | None = None,
        successes: Successes | None = None,
    ) -> None:
        self.manager = manager
        self.job = job
        self.worker_id = worker_id
        self.clock: Clock = manager.clock
        #: a short job's session: the group commit's shared transaction
        self._session: Session | None = shared
        #: a threaded job's: the worker's group write of successes
        self._successes = successes
        self._stack = contextlib.ExitStack()
        self.progress: Any = job.progress

    @property
    def payload(self) -> Any:
        """The job's payload."""
        return self.job.payload

    @property
    def session(self) -> Session:
        """The job's final transaction: writes here commit together with the job's success."""
        if self._session is None:
            self._session = self._stack.enter_context(self.manager.db.write())
        return self._session

    def step(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) as one committed step of a long job; its result once durable.

        The step shares the group commit with the API's writes (on SQLite the one writer, so
        a long job's steps never make the API wait on the file's lock). Like any group
        write, fn may run twice and must touch nothing but the session; `save` in it fences
        the step by the job's lease.
        """
        if self._session is not None:
            raise RuntimeError(
                "step() cannot be used after ctx.session was opened (or in a short job)"
            )
        return self.manager.db.group.run_sync(fn)

    def save(self, session: Session, *, progress: Any = None, checkpoint: Any = None) -> None:
        """Store progress counters and resume state in `session`, fenced by the lease."""
        self.manager.checkpoint(
            session, self.job, self.worker_id, progress=progress, checkpoint=checkpoint
        )
        if progress is not None:
            self.progress = progress

    def _finish(self, result: Any) -> Future[Any] | None:
        """Record the success: None once committed, or a future of the group write that will.

        A job that wrote nothing in a transaction of its own has its success queued in the
        group commit (on SQLite the one writer; a commit of its own would wait for its lock),
        and its thread does not wait for that commit: nothing is answered on it, and a
        success lost to a crash only runs the job again once its lease expires. The
        heartbeat skips rows a batch holds, so the two cannot deadlock.
        """
        if self._session is None:
            if self._successes is None:
                raise RuntimeError("a threaded job's context needs the worker's Successes")
            return self.manager.db.group.submit_many(
                self._successes, (self.job, result, self.progress)
            )
        try:
            self.manager.complete(self.session, self.job, self.worker_id, result, self.progress)
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        self._stack.close()
        return None

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)
