"""Scrape-time metrics of the job queue: depth, running jobs and oldest wait, by kind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from writegate.core.clock import Clock
from writegate.core.db import Database
from writegate.core.jobs.model import ACTIVE, JobRow, Status

log = logging.getLogger("writegate.metrics")

_c = JobRow.__table__.c
#: one grouped query over the active jobs (partial indexes on queued and running jobs)
_ACTIVE_BY_KIND = (
    select(_c.kind, _c.status, func.count(), func.min(_c.run_after))
    .where(_c.status.in_(ACTIVE))
    .group_by(_c.kind, _c.status)
)


class QueueCollector(Collector):
    """Reads the jobs table at each scrape (one grouped query); 0 for idle registered kinds."""

    def __init__(self, db: Database, clock: Clock, kinds: Callable[[], Iterable[str]]) -> None:
        self.db = db
        self.clock = clock
        self.kinds = kinds

    def describe(self) -> Iterable[Metric]:
        """The metric names, without querying."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """Queued and running jobs and the oldest due job's wait, per kind."""
        queued, running, oldest = self._families()
        now = self.clock.now()
        try:
            with self.db.read() as s:
                rows = s.execute(_ACTIVE_BY_KIND).all()
        except Exception as exc:  # no schema yet, database down: the scrape still answers
            log.debug("queue metrics unavailable: %s", exc)
            return []
        counts: dict[str, list[float]] = {k: [0, 0, 0.0] for k in self.kinds()}
        for kind, status, count, first_due in rows:
            values = counts.setdefault(kind, [0, 0, 0.0])
            if status == Status.QUEUED.value:
                values[0] = count
                wait = (now - first_due).total_seconds() if first_due is not None else 0.0
                values[2] = max(0.0, wait)
            else:
                values[1] = count
        for kind, (n_queued, n_running, wait) in sorted(counts.items()):
            queued.add_metric([kind], n_queued)
            running.add_metric([kind], n_running)
            oldest.add_metric([kind], wait)
        return [queued, running, oldest]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("writegate_jobs_queued", "Jobs in the queue.", labels=["kind"]),
            GaugeMetricFamily("writegate_jobs_running", "Jobs running now.", labels=["kind"]),
            GaugeMetricFamily(
                "writegate_jobs_oldest_queued_age_seconds",
                "How long the queue's earliest due job has been due (0 if none is due).",
                labels=["kind"],
            ),
        ]
