"""Regression: a job an operator retries (or releases by a cancel) waited for the worker's next
poll. The retry's UPDATE fires no NOTIFY and woke no in-process worker; with a 30 s poll
interval here, every job below must start long before the poll would find it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Server, backend, fresh_database, start_server, wait_for
from tests.system.clirun import writegate
from writegate.core.jobs import Job, Status

#: far under the poll interval: a job found by the poll instead fails the wait
PROMPT = 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the testkit jobs whose worker polls only every 30 s."""
    with fresh_database(str(tmp_path_factory.mktemp("wakes"))) as url:
        srv = start_server(url, modules=["tests.testkit"], worker_poll_interval=30.0)
        yield srv
        srv.stop()


def _parked(server: Server) -> Job:
    """A testkit.write job due in the year 2999: queued, never claimed."""
    with server.services.db.write() as s:
        return server.services.jobs.enqueue(
            s,
            kind="testkit.write",
            payload={},
            tenant="t",
            run_after=server.services.clock.now().replace(year=2999),
        )


def _cancelled(server: Server) -> str:
    job = _parked(server)
    cancelled = server.services.jobs.cancel(job.id)
    assert cancelled is not None
    assert cancelled.status == Status.CANCELLED
    return job.id


def _succeeds_promptly(server: Server, job_id: str) -> None:
    def done() -> bool:
        with server.services.db.read() as s:
            job = server.services.jobs.get(s, job_id)
        assert job is not None
        return job.status == Status.SUCCEEDED

    wait_for(done, PROMPT)


def test_a_job_retried_through_the_manager_starts_at_once(server: Server) -> None:
    """`JobManager.retry` wakes this process's worker after its COMMIT."""
    job_id = _cancelled(server)
    assert server.services.jobs.retry(job_id) is not None
    _succeeds_promptly(server, job_id)


def test_a_job_retried_in_the_admin_api_starts_at_once(server: Server, make_principal: Any) -> None:
    """The console's retry (the same `act` as its pages) wakes the embedded worker."""
    job_id = _cancelled(server)
    _, key = make_principal(roles=["superadmin"])
    r = httpx.post(
        f"{server.url}/admin/api/jobs/{job_id}/retry", headers={"x-api-key": key}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert r.json()["done"] == 1
    _succeeds_promptly(server, job_id)


def test_the_jobs_waiting_on_a_cancelled_job_start_at_once(server: Server) -> None:
    """A cancel releases the jobs waiting on the cancelled one, and wakes the worker."""
    first = _parked(server)
    with server.services.db.write() as s:
        after = server.services.jobs.enqueue(
            s, kind="testkit.write", payload={}, tenant="t", after_id=first.id
        )
    assert server.services.jobs.cancel(first.id) is not None
    _succeeds_promptly(server, after.id)


@pytest.mark.skipif(
    backend() != "postgresql", reason="SQLite has no signal between processes: workers poll"
)
def test_a_job_retried_by_the_cli_starts_at_once_on_postgresql(server: Server) -> None:
    """`writegate jobs retry` in another process NOTIFYs the server's worker at its COMMIT."""
    job_id = _cancelled(server)
    out = writegate(server, "jobs", "retry", job_id)
    assert out.returncode == 0, out.stderr
    _succeeds_promptly(server, job_id)
