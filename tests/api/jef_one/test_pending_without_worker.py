"""With no worker: accepted writes are pending at once; dependent jobs name what they wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.jef_one.conftest import fresh_number, session_row
from tests.harness import Server, fresh_database, start_server, uid, wait_for
from writegate.core.jobs import Status
from writegate.core.worker import Worker
from writegate.modules.jef_one import service as jef_one
from writegate.modules.jef_one.models import SessionRecord
from writegate.modules.jef_one.schemas import CreateSessionJob, EmployeePost, EntityPost
from writegate.modules.jef_one.service import iso


@pytest.fixture
def quiet(tmp_path: Any) -> Iterator[Server]:
    """jef-one on its own database, with no worker: accepted jobs stay queued."""
    with fresh_database(str(tmp_path)) as url:
        srv = start_server(url, embedded_worker=False, modules=["jef_one"])
        yield srv
        srv.stop()


def _job(srv: Server, job_id: str) -> Any:
    with srv.services.db.read() as s:
        return srv.services.jobs.get(s, job_id)


def test_each_accept_is_pending_on_its_get_and_waits_for_what_it_needs(quiet: Server) -> None:
    entity, employee, session = fresh_number(4), fresh_number(5), uid("pending-")
    with quiet.client() as c:
        r = c.post(
            "/one-entities-post-one",
            json={"entity_number": entity, "entity_name": "Pending Co", "is_active": True},
        )
        assert r.status_code == 202, r.text
        entity_job = r.json()["job_id"]
        view = c.get("/jef-one-get-entity-by-entity-number", params={"entity_number": entity})
        assert view.json()["pending_job_id"] == entity_job
        assert view.json()["pending_job_status"] == "queued"

        r = c.post(
            "/one-employees-post-one",
            json={
                "entity_number": entity,
                "employee_number": employee,
                "employee_name": "Ana Santos",
                "is_active": True,
            },
        )
        assert r.status_code == 202, r.text
        employee_job = r.json()["job_id"]
        params = {"entity_number": entity, "employee_number": employee}
        view = c.get("/jef-one-get-employee-by-employee-number", params=params)
        assert (view.json()["pending_job_id"], view.json()["pending_job_status"]) == (
            employee_job,
            "queued",
        )

        body = {
            "session_id": session,
            "entity_number": entity,
            "employee_number": employee,
            "app_type": "mobile",
            "app_number": "001",
        }
        r = c.post("/one-post-create-session-job", json=body)
        assert r.status_code == 202, r.text
        session_job = r.json()["job_id"]
        # Its job is written in the accept's own transaction: the session is found from the 202.
        view = c.get("/jef-one-get-session-by-session-id", params={"session_id": session})
        assert view.json()["is_found"] is True
        assert (view.json()["status"], view.json()["job_id"]) == ("pending", session_job)

        # Each job waits for the accepted write it depends on.
        assert _job(quiet, employee_job).after_id == entity_job
        assert _job(quiet, session_job).after_id == employee_job

        # A worker that could claim all three at once still runs them in order.
        worker = Worker(
            quiet.services.jobs,
            quiet.services.registry,
            wakeup=quiet.services.wakeup,
            poll_interval=0.2,
        )
        worker.start()
        try:
            wait_for(lambda: _job(quiet, session_job).status is Status.SUCCEEDED, timeout=60)
        finally:
            worker.stop()
        jobs = [_job(quiet, j) for j in (entity_job, employee_job, session_job)]
        # Order shows in the outcomes, not the timestamps: each is read from the clock a moment
        # before its statement runs, so a claim can be stamped a hair before the commit it
        # waited for. The employee job fails for good without its entity, and the session
        # is verified only if its employee existed when it ran.
        assert [j.status for j in jobs] == [Status.SUCCEEDED] * 3
        view = c.get("/jef-one-get-session-by-session-id", params={"session_id": session})
        assert view.json()["status"] == "verified", view.text


def _session_body(session: str, entity: str, employee: str, app_number: str) -> dict[str, str]:
    return {
        "session_id": session,
        "entity_number": entity,
        "employee_number": employee,
        "app_type": "desktop",
        "app_number": app_number,
    }


def _session_rows(srv: Server, session_id: str) -> list[tuple[Any, ...]]:
    with srv.services.db.read() as s:
        rows = s.execute(
            select(
                SessionRecord.status,
                SessionRecord.job_id,
                SessionRecord.application_number,
                SessionRecord.created_at,
            ).where(SessionRecord.session_id == session_id)
        )
        return [tuple(r) for r in rows]


def _accept(srv: Server, body: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """POST a session (202 expected); its job id and the session GET right after."""
    with srv.client() as c:
        r = c.post("/one-post-create-session-job", json=body)
        assert r.status_code == 202, r.text
        params = {"session_id": body["session_id"]}
        return r.json()["job_id"], c.get("/jef-one-get-session-by-session-id", params=params).json()


def test_regression_an_accept_writes_its_job_and_no_session_row(quiet: Server) -> None:
    """The session GET shows an accepted session from its job; the row is its job's to write."""
    session, entity, employee = uid("jobonly-"), fresh_number(4), fresh_number(5)
    body = _session_body(session, entity, employee, "042")
    job_id, view = _accept(quiet, body)
    job = _job(quiet, job_id)
    assert view == {
        "is_found": True,
        "session_id": session,
        "entity_number": entity,
        "employee_number": employee,
        "application_type": "desktop",
        "application_number": "042",
        "status": "pending",
        "failure_reason": None,
        "job_id": job.id,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.created_at),
        "verified_at": None,
        "message": "session is pending: its job is accepted and not yet final",
    }
    assert _session_rows(quiet, session) == []


def test_regression_a_failed_session_sent_again_is_pending_over_its_failed_row(
    quiet: Server,
) -> None:
    """Until the new job is final, the GET shows the new submission, created when first sent."""
    session, entity, employee = uid("again-"), fresh_number(4), fresh_number(5)
    services = quiet.services
    first = datetime(2026, 1, 2, 3, 4, 5)
    with services.db.write() as s:
        reason = f"entity {entity} does not exist"
        s.add(session_row(session, entity, employee, "the-failed-job", first, reason))
    job_id, view = _accept(quiet, _session_body(session, entity, employee, "002"))
    assert (view["status"], view["job_id"], view["failure_reason"]) == ("pending", job_id, None)
    assert (view["application_type"], view["application_number"]) == ("desktop", "002")
    assert view["created_at"] == iso(first)
    assert view["updated_at"] == iso(_job(quiet, job_id).created_at)
    # The failed row is untouched until the new job writes its outcome.
    assert _session_rows(quiet, session) == [("failed", "the-failed-job", "001", first)]


def test_regression_a_session_whose_job_was_cancelled_is_not_found(quiet: Server) -> None:
    """A session job cancelled before it ran leaves no session behind, and the GET says so."""
    session = uid("cancelled-")
    job_id, view = _accept(quiet, _session_body(session, fresh_number(4), fresh_number(5), "003"))
    assert (view["status"], view["job_id"]) == ("pending", job_id)
    quiet.services.jobs.cancel(job_id)
    with quiet.client() as c:
        view = c.get("/jef-one-get-session-by-session-id", params={"session_id": session}).json()
    assert view["is_found"] is False
    assert view["message"].endswith("or its job ended without writing it")
    assert _session_rows(quiet, session) == []


def test_regression_dependent_writes_in_one_batch_did_not_wait_for_each_other(
    quiet: Server,
) -> None:
    """An entity, its employee and a session accepted in one shared transaction (POSTs sent
    without waiting for each other's 202) were not ordered: each looked for the jobs it must
    wait on among those committed before, and the session failed ("employee ... does not
    belong to entity"). In one batch, each waits for the earlier ones, in arrival order."""
    entity, employee, session = fresh_number(4), fresh_number(5), uid("batch-")
    services = quiet.services

    async def one_batch() -> list[dict[str, Any]]:
        return await asyncio.gather(  # queued in one turn of the loop: one transaction
            jef_one.accept_entity(services, EntityPost(entity_number=entity, entity_name="B")),
            jef_one.accept_employee(
                services,
                EmployeePost(entity_number=entity, employee_number=employee, employee_name="A"),
            ),
            jef_one.accept_session(
                services,
                CreateSessionJob(
                    entity_number=entity,
                    employee_number=employee,
                    session_id=session,
                    app_type="mobile",
                    app_number="001",
                ),
            ),
        )

    answers = asyncio.run(one_batch())
    ent, emp, ses = (_job(quiet, a["job_id"]) for a in answers)
    assert ent.created_at == emp.created_at == ses.created_at  # one batch
    assert (ent.after_id, emp.after_id, ses.after_id) == (None, ent.id, emp.id)
    assert (emp.waiting_on, ses.waiting_on) == (ent.id, emp.id)
    worker = Worker(services.jobs, services.registry, wakeup=services.wakeup, poll_interval=0.2)
    worker.start()
    try:
        wait_for(lambda: _job(quiet, ses.id).status is Status.SUCCEEDED, timeout=60)
    finally:
        worker.stop()
    with services.db.read() as s:
        row = s.scalar(select(SessionRecord).where(SessionRecord.session_id == session))
    assert row is not None
    assert row.status == "verified", row.failure_reason
