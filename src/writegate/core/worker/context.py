"""What a job handler gets: the job, its transactions, progress and checkpoints."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from writegate.core.clock import Clock
from writegate.core.jobs import Job, JobManager


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

    @contextlib.contextmanager
    def checkpoint(self) -> Iterator[Session]:
        """A separate committed transaction for one step of a long job (lease-fenced)."""
        if self._session is not None:
            raise RuntimeError(
                "checkpoint() cannot be used after ctx.session was opened (or in a short job)"
            )
        with self.manager.db.write() as s:
            yield s

    def save(self, session: Session, *, progress: Any = None, checkpoint: Any = None) -> None:
        """Store progress counters and resume state in `session`, fenced by the lease."""
        self.manager.checkpoint(
            session, self.job, self.worker_id, progress=progress, checkpoint=checkpoint
        )
        if progress is not None:
            self.progress = progress

    def _finish(self, result: Any) -> None:
        try:
            self.manager.complete(self.session, self.job, self.worker_id, result, self.progress)
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        self._stack.close()

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)
