"""Fixtures for the console and admin API tests: operators, and jobs in a chosen state."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.harness import Server, uid
from writegate.core.jobs import JobRow

#: a kind no module registers: its jobs stay where a test puts them (no worker takes them)
IDLE = "console.idle"


def headers(key: str) -> dict[str, str]:
    """API key headers."""
    return {"x-api-key": key}


@pytest.fixture
def tenant() -> str:
    """A fresh tenant name."""
    return uid("tenant-")


@pytest.fixture
def admin(make_principal: Any) -> dict[str, str]:
    """Headers of a superadmin (sees every tenant, may act)."""
    _, key = make_principal(roles=["superadmin"])
    return headers(key)


@pytest.fixture
def make_job(server: Server) -> Any:
    """Create a job of `kind` in `tenant` and force it into `status` (setting up, not acting)."""

    def make(
        tenant: str,
        status: str = "queued",
        *,
        kind: str = IDLE,
        payload: Any = None,
        exclusive_key: str | None = None,
        error: str | None = None,
    ) -> str:
        services = server.services
        with services.db.write() as s:
            job = services.jobs.enqueue(
                s,
                kind=kind,
                payload=payload if payload is not None else {"n": 1},
                tenant=tenant,
                exclusive_key=exclusive_key,
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
                        finished_at=now if status not in ("running",) else None,
                        lease_owner="test-worker:1" if status == "running" else None,
                        # far off: the server's reaper must not requeue it mid-test
                        lease_expires_at=now + timedelta(hours=1) if status == "running" else None,
                    )
                )
        return job.id

    return make


def status_of(server: Server, job_id: str) -> str:
    """A job's status as stored."""
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, job_id)
        assert job is not None
        return job.status.value


def sign_in(client: httpx.Client, name: str, password: str) -> str:
    """Sign in through the console's form; returns the session's CSRF token."""
    r = client.get("/console/login")
    assert r.status_code == 200, r.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert csrf is not None
    r = client.post(
        "/console/login",
        data={"name": name, "password": password, "csrf": csrf.group(1), "next": "/console"},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console", r.headers["location"]
    page = client.get("/console/jobs")
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)
