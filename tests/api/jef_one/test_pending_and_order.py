"""Regressions of issue #18: a session is visible as pending from its 202; dependent writes wait."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.api.jef_one.conftest import fresh_number, wait_job
from tests.harness import Server


def _session(entity: str, employee: str) -> dict[str, Any]:
    return {
        "entity_number": entity,
        "employee_number": employee,
        "session_id": f"session-{fresh_number(5)}{fresh_number(5)}",
        "app_type": "mobile",
        "app_number": "001",
    }


def test_a_session_is_pending_from_its_202_until_its_job_is_final(
    server: Server, entity: Any
) -> None:
    """The GET named in the 202 finds the session at once (pending), then verified."""
    number, employee = entity()
    body = _session(number, employee)
    # No worker may run the job between the 202 and the GET: the embedded worker is paused.
    with server.client() as client:
        worker = server.app.state.worker
        worker.pause()
        try:
            r = client.post("/one-post-create-session-job", json=body)
            assert r.status_code == 202, r.text
            view = client.get(
                "/jef-one-get-session-by-session-id", params={"session_id": body["session_id"]}
            ).json()
            assert view["is_found"] is True
            assert view["status"] == "pending"
            assert view["job_id"] == r.json()["job_id"]
            assert view["verified_at"] is None
            assert (view["entity_number"], view["application_number"]) == (number, "001")
            pending = view
        finally:
            worker.resume()
        job = wait_job(client, r.json()["job_id"])
        view = client.get(
            "/jef-one-get-session-by-session-id", params={"session_id": body["session_id"]}
        ).json()
        assert view["status"] == "verified"
        # Created when it was accepted, as the pending view said, not when its job ran.
        assert view["created_at"] == pending["created_at"] == job["created_at"]


def test_an_unknown_session_is_not_found(client: httpx.Client) -> None:
    """A session that was never accepted is not found, and says so."""
    view = client.get(
        "/jef-one-get-session-by-session-id", params={"session_id": "session-never-sent"}
    ).json()
    assert view["is_found"] is False
    assert "no such session was accepted" in view["message"]


def _tour(server: Server) -> tuple[str, str, str]:
    """The README's tour, back to back with no waiting: entity, employee, session."""
    entity, employee = fresh_number(4), fresh_number(5)
    body = _session(entity, employee)
    with server.client() as client:
        ids = []
        for path, payload in (
            ("/one-entities-post-one", {"entity_number": entity, "entity_name": "Head office"}),
            (
                "/one-employees-post-one",
                {"entity_number": entity, "employee_number": employee, "employee_name": "Ana"},
            ),
            ("/one-post-create-session-job", body),
        ):
            r = client.post(path, json=payload)
            assert r.status_code == 202, r.text
            ids.append(r.json()["job_id"])
    return ids[0], ids[1], ids[2]


def test_dependent_writes_sent_back_to_back_never_lose_the_race(server: Server) -> None:
    """30 tours at 10 at a time: every entity, employee and session job succeeds."""
    with ThreadPoolExecutor(10) as pool:
        tours = list(pool.map(lambda _: _tour(server), range(30)))
    with server.client() as client:
        for entity_job, employee_job, session_job in tours:
            for job_id in (entity_job, employee_job, session_job):
                view = wait_job(client, job_id)
                assert view["job_status"] == "succeeded", view
            session = wait_job(client, session_job)["result"]
            assert session["status"] == "verified", session


def test_entity_and_employee_gets_show_a_pending_upsert(server: Server) -> None:
    """Before its job runs, an accepted entity upsert is visible on the entity GET."""
    number = fresh_number(4)
    with server.client() as client:
        worker = server.app.state.worker
        worker.pause()
        try:
            r = client.post(
                "/one-entities-post-one", json={"entity_number": number, "entity_name": "E"}
            )
            assert r.status_code == 202
            view = client.get(
                "/jef-one-get-entity-by-entity-number", params={"entity_number": number}
            ).json()
            assert view["is_found"] is False
            assert view["pending_job_id"] == r.json()["job_id"]
            assert view["pending_job_status"] == "queued"
        finally:
            worker.resume()
        wait_job(client, r.json()["job_id"])
        view = client.get(
            "/jef-one-get-entity-by-entity-number", params={"entity_number": number}
        ).json()
        assert view["is_found"] is True
        assert view["pending_job_id"] is None


def _final_between_the_reads(server: Server, key: str, job_id: str) -> Any:
    """`read_active_holder` that, for `key`, first lets the paused worker finish `job_id`:
    the upsert's final commit lands while a GET is between its reads."""
    services, worker = server.services, server.app.state.worker
    real = services.jobs.read_active_holder

    async def late(exclusive_key: str) -> Any:
        if exclusive_key == key:
            worker.resume()
            while True:
                job = await services.jobs.read(job_id)
                if job is not None and job.status.value == "succeeded":
                    break
                await asyncio.sleep(0.01)
        return await real(exclusive_key)

    return late


@pytest.mark.parametrize("record", ["entity", "employee"])
def test_regression_an_upsert_final_between_a_gets_reads_showed_nothing(
    server: Server, entity: Any, monkeypatch: pytest.MonkeyPatch, record: str
) -> None:
    """The entity and employee GETs read the record, then its pending job: an upsert whose
    job became final between the two showed neither (`is_found: false`, nothing pending) on
    PostgreSQL, and a client took the accepted write for lost. The job is read first now."""
    if record == "entity":
        number = fresh_number(4)
        path, body = "/one-entities-post-one", {"entity_number": number, "entity_name": "E"}
        get, params = "/jef-one-get-entity-by-entity-number", {"entity_number": number}
        key = f"jef_one.upsert_entity:{number}"
    else:
        (number, _), employee = entity(), fresh_number(5)  # a new employee of an entity
        path = "/one-employees-post-one"
        body = {"entity_number": number, "employee_number": employee, "employee_name": "Ana"}
        get = "/jef-one-get-employee-by-employee-number"
        params = {"entity_number": number, "employee_number": employee}
        key = f"jef_one.upsert_employee:{number}/{employee}"
    worker = server.app.state.worker
    with server.client() as client:
        worker.pause()
        try:
            r = client.post(path, json=body)
            assert r.status_code == 202, r.text
            late = _final_between_the_reads(server, key, r.json()["job_id"])
            monkeypatch.setattr(server.services.jobs, "read_active_holder", late)
            view = client.get(get, params=params).json()
        finally:
            worker.resume()
    assert view["is_found"] is True, view
    assert view["pending_job_id"] is None
