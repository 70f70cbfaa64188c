"""What a job handler gets: the job, its transactions, progress and checkpoints."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from writegate.core.clock import Clock
from writegate.core.jobs import Job, JobManager

T = TypeVar("T")


class JobContext:
    """What a handler gets: the job, and the transactions it may use."""

    def __init__(
        self,
        manager: JobManager,
        job: Job,
        worker_id: str,
        shared: Session | None = None,
    ) -> None:
        self.manager = manager
        self.job = job
        self.worker_id = worker_id
        self.clock: Clock = manager.clock
        #: a short job's session: the group commit's shared transaction
        self._session: Session | None = shared
        self._short = shared is not None
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

    def _finish(self, result: Any) -> None:
        if self._session is None:
            # Nothing written in a transaction of the job's own: its success shares the group
            # commit (on SQLite the one writer; a commit of its own would wait for its lock).
            # The heartbeat skips rows a batch holds, so the two cannot deadlock.
            self.manager.db.group.run_sync(
                lambda s: self.manager.complete(s, self.job, self.worker_id, result, self.progress)
            )
            return
        try:
            self.manager.complete(self.session, self.job, self.worker_id, result, self.progress)
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        self._stack.close()

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)
