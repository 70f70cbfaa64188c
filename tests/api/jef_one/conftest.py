"""jef-one helpers: register entities/employees through the API and wait for jobs."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.harness import wait_for
from writegate.modules.jef_one.models import SessionRecord


def wait_job(client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the job GET until the job is final; return its view."""

    def done() -> dict[str, Any] | None:
        view = client.get("/jef-one-get-job-by-job-id", params={"job_id": job_id}).json()
        return view if view["job_status"] in ("succeeded", "failed", "cancelled") else None

    return dict(wait_for(done, timeout))


def session_row(
    sid: str, ent: str, emp: str, job_id: str, at: datetime, reason: str | None = None
) -> SessionRecord:
    """A session row as its job's final write leaves it: failed with `reason`, else verified."""
    return SessionRecord(
        session_id=sid,
        entity_number=ent,
        employee_number=emp,
        application_type="mobile",
        application_number="001",
        status="failed" if reason else "verified",
        failure_reason=reason,
        job_id=job_id,
        created_at=at,
        updated_at=at,
        verified_at=None if reason else at,
    )


_used: set[str] = set()


def fresh_number(digits: int) -> str:
    """A number of `digits` digits not handed out before in this test session."""
    while True:
        n = f"{random.randrange(10**digits - 100):0{digits}d}"  # top 100 kept for fixed ids
        if (digits, n) not in _used and n not in ("1001", "00001"):
            _used.add((digits, n))  # type: ignore[arg-type]
            return n


@pytest.fixture
def entity(client: httpx.Client) -> Any:
    """Register an entity (and optionally an employee) through the API; wait until applied."""

    def make(active: bool = True, employee_active: bool | None = True) -> tuple[str, str]:
        number = fresh_number(4)
        r = client.post(
            "/one-entities-post-one",
            json={"entity_number": number, "entity_name": f"Entity {number}", "is_active": True},
        )
        assert r.status_code == 202, r.text
        assert wait_job(client, r.json()["job_id"])["job_status"] == "succeeded"
        employee = fresh_number(5)
        if employee_active is not None:
            r = client.post(
                "/one-employees-post-one",
                json={
                    "entity_number": number,
                    "employee_number": employee,
                    "employee_name": "Ana Santos",
                    "is_active": employee_active,
                },
            )
            assert r.status_code == 202, r.text
            assert wait_job(client, r.json()["job_id"])["job_status"] == "succeeded"
        if not active:
            r = client.post(
                "/one-entities-post-one",
                json={"entity_number": number, "entity_name": "Closed", "is_active": False},
            )
            assert wait_job(client, r.json()["job_id"])["job_status"] == "succeeded"
        return number, employee

    return make
