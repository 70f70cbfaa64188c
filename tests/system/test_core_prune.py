"""jobs.prune: only final jobs that finished before the cut-off go, while workers run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, update

from tests.harness import uid, wait_for
from tests.system.conftest import core_services, job_of, start_worker
from writegate.core.exceptions import PermanentJobError
from writegate.core.jobs import JobRow, Status
from writegate.core.services import Services
from writegate.core.worker import JobContext, JobSpec


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, without any API module."""
    with core_services(db_url, MetaData()) as svc:
        yield svc


def _enqueue(services: Services, kind: str, payloads: list[Any]) -> list[str]:
    with services.db.write() as s:
        return [services.jobs.enqueue(s, kind=kind, payload=p, tenant="prune").id for p in payloads]


def _backdate(services: Services, ids: list[str], days: float) -> None:
    """Make jobs look as if they finished (or were written) `days` ago."""
    then = services.clock.now() - timedelta(days=days)
    with services.db.write() as s:
        s.execute(update(JobRow).where(JobRow.id.in_(ids)).values(created_at=then, updated_at=then))
        s.execute(
            update(JobRow)
            .where(JobRow.id.in_(ids), JobRow.finished_at.is_not(None))
            .values(finished_at=then)
        )


def _present(services: Services, ids: list[str]) -> set[str]:
    return {i for i in ids if job_of(services, i) is not None}


def test_prune_deletes_only_final_jobs_finished_before_the_cut_off(services: Services) -> None:
    quick, broken, slow = uid("core.q-"), uid("core.b-"), uid("core.s-")
    unserved = uid("core.u-")
    release = threading.Event()

    def hold(ctx: JobContext) -> Any:
        release.wait(60)
        return "held"

    def fail(ctx: JobContext) -> Any:
        raise PermanentJobError("no")

    worker = start_worker(
        services,
        [JobSpec(quick, lambda ctx: "ok", short=True), JobSpec(broken, fail), JobSpec(slow, hold)],
    )
    try:
        done = _enqueue(services, quick, [{"n": n} for n in range(4)])
        failed = _enqueue(services, broken, [{}])
        cancelled = _enqueue(services, unserved, [{}])
        services.jobs.cancel(cancelled[0])
        wait_for(
            lambda: all(
                job_of(services, i).status.value in ("succeeded", "failed") for i in done + failed
            ),
            timeout=30,
        )
        running = _enqueue(services, slow, [{}])
        queued = _enqueue(services, unserved, [{}])
        wait_for(lambda: job_of(services, running[0]).status is Status.RUNNING, timeout=30)
        old_done, fresh_done = done[:2], done[2:]
        # Old: two succeeded, the failed and the cancelled one - and the running and the
        # queued jobs were written as long ago, but are not final.
        _backdate(services, [*old_done, *failed, *cancelled, *running, *queued], days=3)
        everything = [*done, *failed, *cancelled, *running, *queued]

        assert services.jobs.prune(timedelta(days=1), dry_run=True) == 4
        assert _present(services, everything) == set(everything)  # a dry run deletes nothing
        # More jobs keep running meanwhile.
        more = _enqueue(services, quick, [{"more": n} for n in range(20)])
        assert services.jobs.prune(timedelta(days=1), statuses=["succeeded"]) == 2
        assert _present(services, everything) == set(everything) - set(old_done)
        assert services.jobs.prune(timedelta(days=1), batch=1) == 2  # one row per batch
        assert services.jobs.prune(timedelta(days=4)) == 0  # none finished that long ago
        kept = [*fresh_done, *running, *queued]
        assert _present(services, everything) == set(kept)
        assert job_of(services, running[0]).status is Status.RUNNING
        release.set()
        wait_for(
            lambda: all(job_of(services, i).status is Status.SUCCEEDED for i in [*running, *more]),
            timeout=30,
        )
    finally:
        release.set()
        worker.stop()
    assert job_of(services, running[0]).result == "held"
    assert job_of(services, queued[0]).status is Status.QUEUED
    # Jobs that just finished are not old: nothing more to prune.
    assert services.jobs.prune(timedelta(days=1)) == 0
