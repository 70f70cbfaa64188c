"""The process's Prometheus metrics and their exposition, in one process or several.

With PROMETHEUS_MULTIPROC_DIR set (before this module is first imported) every process
writes its values to files there and a scrape of any one of them sums them all; see
`multiproc.prepare`.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from writegate.core.observability.multiproc import ENV, multiprocess

if TYPE_CHECKING:
    from writegate.core.db import Database

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_JOB_SECONDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

HTTP_REQUESTS = Histogram(
    "writegate_http_request_duration_seconds",
    "HTTP requests by API, route template, method and status: time to the last response byte.",
    ["api", "route", "method", "status"],
    buckets=_SECONDS,
)
JOBS_ENQUEUED = Counter("writegate_jobs_enqueued", "Jobs committed to the queue.", ["kind"])
JOBS_STARTED = Counter("writegate_jobs_started", "Job attempts claimed by a worker.", ["kind"])
JOBS_SUCCEEDED = Counter("writegate_jobs_succeeded", "Job attempts that succeeded.", ["kind"])
JOBS_FAILED = Counter("writegate_jobs_failed", "Jobs that failed for good.", ["kind"])
JOBS_RETRIED = Counter(
    "writegate_jobs_retried", "Failed job attempts queued again for a retry.", ["kind"]
)
JOB_RUN = Histogram(
    "writegate_job_run_seconds",
    "Time a job attempt's handler ran, by kind and outcome.",
    ["kind", "outcome"],
    buckets=_JOB_SECONDS,
)
JOB_PICKUP = Histogram(
    "writegate_job_pickup_delay_seconds",
    "Time from a job being due (max of created_at, run_after) to a worker starting it.",
    ["kind"],
    buckets=(*_SECONDS, 30.0, 60.0, 300.0),
)
GROUP_COMMIT_BATCH = Histogram(
    "writegate_group_commit_batch_size",
    "Writes that shared one group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
GROUP_COMMIT_WRITER_BUSY = Counter(
    "writegate_group_commit_writer_busy",
    "Event-loop batches that found SQLite's writer lock held and ran on a commit thread.",
)
POOL_IN_USE = Gauge(
    "writegate_db_pool_connections_in_use",
    "Database connections checked out of the process's pool.",
    multiprocess_mode="livesum",
)


class _Children:
    """A metric's labelled children, cached: `labels()` costs a lock and a tuple each call."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.metric.labels(*values)
        return child


http_requests = _Children(HTTP_REQUESTS)
_enqueued = _Children(JOBS_ENQUEUED)
_started = _Children(JOBS_STARTED)
_pickup = _Children(JOB_PICKUP)
_run = _Children(JOB_RUN)
_outcomes = {
    "succeeded": _Children(JOBS_SUCCEEDED),
    "failed": _Children(JOBS_FAILED),
    "retried": _Children(JOBS_RETRIED),
}


def jobs_enqueued(kinds: Iterable[str]) -> None:
    """Count committed new jobs, one kind per job (one increment per kind, not per job)."""
    for kind, n in collections.Counter(kinds).items():
        _enqueued(kind).inc(n)


def job_started(kind: str, due: datetime, started: datetime | None) -> None:
    """Count a claimed attempt and how long it waited since it was due."""
    _started(kind).inc()
    if started is not None:
        _pickup(kind).observe(max(0.0, (started - due).total_seconds()))


def job_finished(kind: str, outcome: str, seconds: float) -> None:
    """Count an attempt's outcome ("succeeded", "failed", "retried" or "lost") and run time."""
    counter = _outcomes.get(outcome)
    if counter is not None:
        counter(kind).inc()
    _run(kind, outcome).observe(seconds)


def group_commit_batch(size: int) -> None:
    """Record one group commit's batch size (`GroupCommit.on_batch`)."""
    GROUP_COMMIT_BATCH.observe(size)


def group_commit_writer_busy() -> None:
    """Count one loop batch sent to a commit thread (`GroupCommit.on_writer_busy`)."""
    GROUP_COMMIT_WRITER_BUSY.inc()


def instrument_pool(db: Database) -> None:
    """Keep `writegate_db_pool_connections_in_use` up to date from the pools' events."""

    def checkout(*_: Any) -> None:
        POOL_IN_USE.set(db.connections_in_use())

    def checkin(*_: Any) -> None:
        # The returning connection is still counted when checkin fires.
        POOL_IN_USE.set(max(0, db.connections_in_use() - 1))

    db.listen("checkout", checkout)
    db.listen("checkin", checkin)


class _Process(Collector):
    """This process's metrics, or in multi-process mode every live process's, summed."""

    def __init__(self) -> None:
        self._multi: Collector | None = None
        if multiprocess():
            from prometheus_client.multiprocess import MultiProcessCollector

            self._multi = MultiProcessCollector(None, os.environ[ENV])  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        """Every metric of the process (or processes)."""
        return self._multi.collect() if self._multi is not None else REGISTRY.collect()


def registry(*collectors: Collector) -> CollectorRegistry:
    """A registry exposing the process's metrics plus `collectors` (scrape-time queries)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Process())
    for collector in collectors:
        reg.register(collector)
    return reg


def mark_process_dead() -> None:
    """Drop this process's live gauges from the multi-process files (at shutdown)."""
    if multiprocess():
        from prometheus_client.multiprocess import mark_process_dead as mark

        mark(os.getpid())  # type: ignore[no-untyped-call]
