"""Jobs still running when a worker stops: given back to the queue, their attempt not counted."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session

from writegate.core.jobs import Job, JobManager

log = logging.getLogger("writegate.worker")


class HandBacks:
    """Gives a stopping worker's unfinished jobs back, and remembers which it gave: their
    handlers may still end later, and that end is no longer this worker's to settle."""

    def __init__(self, manager: JobManager, worker_id: str) -> None:
        self.manager = manager
        self.worker_id = worker_id
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def give_back(self, jobs: list[Job]) -> None:
        """Make each job claimable at once, its attempt not counted (a write each)."""
        for job in jobs:

            def hand_back(s: Session, job: Job = job) -> bool:
                return self.manager.hand_back(s, job, self.worker_id)

            try:
                handed = self.manager.db.group.run_sync(hand_back)
            except Exception:
                log.exception("could not hand back job %s", job.id)
                continue
            if handed:
                with self._lock:
                    self._ids.add(job.id)
                log.warning("job %s (%s) handed back unfinished at shutdown", job.id, job.kind)

    def __contains__(self, job: Job) -> bool:
        with self._lock:
            return job.id in self._ids
