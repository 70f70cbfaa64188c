"""Jobs put into a chosen state for the operator tests (console, admin API, `writegate jobs`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from tests.harness import Server
from writegate.core.jobs import JobRow


def make_job(
    server: Server,
    tenant: str,
    status: str = "queued",
    *,
    kind: str,
    payload: Any = None,
    exclusive_key: str | None = None,
    error: str | None = None,
    after_id: str | None = None,
) -> str:
    """Create a job of a kind no worker takes, forced into `status` (setting up, not acting)."""
    services = server.services
    with services.db.write() as s:
        job = services.jobs.enqueue(
            s,
            kind=kind,
            payload=payload if payload is not None else {"n": 1},
            tenant=tenant,
            exclusive_key=exclusive_key,
            after_id=after_id,
        )
        if status != "queued":
            now = services.clock.now()
            s.execute(
                update(JobRow)
                .where(JobRow.id == job.id)
                .values(
                    status=status,
                    attempts=1,
                    error=error,
                    finished_at=None if status == "running" else now,
                    lease_owner="test-worker:1" if status == "running" else None,
                    # far off: the server's reaper must not requeue it mid-test
                    lease_expires_at=now + timedelta(hours=1) if status == "running" else None,
                )
            )
    return job.id


def status_of(server: Server, job_id: str) -> str:
    """A job's status as stored."""
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, job_id)
        assert job is not None
        return job.status.value
