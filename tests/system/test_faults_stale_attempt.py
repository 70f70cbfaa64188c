"""A handler that outlives its timeout must not commit over the attempt that replaced it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.harness import Server, fresh_database, start_server, wait_for
from tests.testkit import effects
from writegate.core.jobs import Job, Status


@pytest.fixture
def stale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded worker, so the timed-out job is re-claimed by the same worker id."""
    with fresh_database(str(tmp_path_factory.mktemp("stale"))) as url:
        srv = start_server(url, modules=["tests.system.faultkit"], job_timeout_seconds=60)
        yield srv
        srv.stop()


def _job(server: Server, job_id: str) -> Job:
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, job_id)
    assert job is not None
    return job


def test_timed_out_attempt_cannot_commit_after_same_worker_reclaims(
    stale_server: Server,
) -> None:
    """Attempt 1 hangs past its timeout, the same worker re-runs the job as attempt 2, then
    attempt 1 wakes up: only attempt 2 may commit, and it must not lose its own lease."""
    services = stale_server.services
    with services.db.write() as s:
        job_id = services.jobs.enqueue(
            s, kind="faultkit.stale", payload={"later_sleep": 4}, tenant="t"
        ).id
    wait_for(lambda: _job(stale_server, job_id).status == Status.RUNNING, 30)
    services.clock.advance(timedelta(seconds=120))  # past the 60 s timeout: the reaper acts
    job = wait_for(
        lambda: (
            (j := _job(stale_server, job_id)).status not in (Status.QUEUED, Status.RUNNING) and j
        ),
        60,
    )
    with services.db.read() as s:
        rows = s.execute(select(effects.c.attempt).where(effects.c.job_id == job_id)).all()
    assert job.status == Status.SUCCEEDED
    assert [r.attempt for r in rows] == [2], "only the attempt holding the lease may commit"
    assert job.attempts == 2, "the live attempt must keep its lease (no third attempt)"
    assert job.result == {"attempt": 2}
