"""Worker.stop(grace): unfinished threaded jobs go back to the queue, their attempt uncounted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select

from tests.harness import uid, wait_for
from tests.system.conftest import core_services, job_of, start_worker
from writegate.core.jobs import Status
from writegate.core.services import Services
from writegate.core.worker import JobContext, JobSpec

scratch = MetaData()
effects = Table(
    "core_test_stop_effects",
    scratch,
    Column("id", String(64), primary_key=True),
    Column("job_id", String(36)),
    Column("worker", String(100)),
)


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, without any API module."""
    with core_services(db_url, scratch) as svc:
        yield svc


def test_stop_hands_a_long_job_back_and_another_worker_finishes_it(services: Services) -> None:
    kind = uid("core.long-")
    first_id, second_id = uid("first-"), uid("second-")
    started, release = threading.Event(), threading.Event()
    returned: list[str] = []

    def handler(ctx: JobContext) -> Any:
        if ctx.worker_id == first_id:
            started.set()
            release.wait(60)  # far longer than the stop's grace
        ctx.session.execute(
            insert(effects).values(id=uid("e-"), job_id=ctx.job.id, worker=ctx.worker_id)
        )
        returned.append(ctx.worker_id)
        return ctx.worker_id

    spec = JobSpec(kind, handler)
    with services.db.write() as s:
        job = services.jobs.enqueue(s, kind=kind, payload={}, tenant="stop", max_attempts=3)
    first = start_worker(services, [spec], worker_id=first_id)
    try:
        assert started.wait(30)
        assert job_of(services, job.id).attempts == 1
        t0 = time.monotonic()
        first.stop(grace=0.5)
        assert time.monotonic() - t0 < 10  # it did not wait for the job
        handed = job_of(services, job.id)
        assert handed.status is Status.QUEUED
        assert handed.attempts == 0  # the interrupted attempt is not counted
        assert (handed.lease_owner, handed.error) == (None, None)
        assert handed.run_after <= services.clock.now()  # claimable at once
        second = start_worker(services, [spec], worker_id=second_id)
        try:
            wait_for(lambda: job_of(services, job.id).status is Status.SUCCEEDED, timeout=30)
        finally:
            second.stop()
        # The first worker's handler ends late: its writes and its success are refused.
        release.set()
        wait_for(lambda: len(returned) == 2, timeout=30)
        time.sleep(0.2)  # its rollback follows the return
    finally:
        release.set()
    done = job_of(services, job.id)
    assert (done.status, done.result, done.attempts) == (Status.SUCCEEDED, second_id, 1)
    with services.db.read() as s:
        writers = s.scalars(select(effects.c.worker).where(effects.c.job_id == job.id)).all()
    assert writers == [second_id]


@pytest.mark.parametrize("ending", ["raises", "steps"])
def test_regression_a_handed_back_jobs_late_end_was_logged_as_a_failure(
    services: Services, caplog: pytest.LogCaptureFixture, ending: str
) -> None:
    """A handler that ends after its job was handed back at stop (its worker's services
    closing meanwhile) was settled as this worker's: "attempt 1 failed", "could not record
    failure" or "lease lost" in the log. The job is the next attempt's: nothing is logged
    above INFO, and the job stays queued with its attempt uncounted."""
    kind = uid("core.late-")
    started, release, ended = threading.Event(), threading.Event(), threading.Event()

    def handler(ctx: JobContext) -> Any:
        started.set()
        release.wait(60)
        try:
            if ending == "raises":
                raise RuntimeError("the handler's own error, after the hand-back")
            ctx.step(lambda s: ctx.save(s, progress={"late": True}))
        finally:
            ended.set()

    with services.db.write() as s:
        job = services.jobs.enqueue(s, kind=kind, payload={}, tenant="stop", max_attempts=3)
    worker = start_worker(services, [JobSpec(kind, handler)])
    assert started.wait(30)
    worker.stop(grace=0.2)
    caplog.clear()
    with caplog.at_level("INFO", logger="writegate.worker"):
        release.set()
        assert ended.wait(30)
        time.sleep(0.3)  # what follows the handler's end
    loud = [r.getMessage() for r in caplog.records if r.levelname not in ("DEBUG", "INFO")]
    assert loud == []
    assert not any("failed" in r.getMessage() for r in caplog.records)
    handed = job_of(services, job.id)
    assert (handed.status, handed.attempts) == (Status.QUEUED, 0)
    services.jobs.cancel(job.id)
