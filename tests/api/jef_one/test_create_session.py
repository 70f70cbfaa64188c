"""POST /one-post-create-session-job end to end, through a real server and worker."""

from __future__ import annotations

import concurrent.futures
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.api.jef_one.conftest import session_row, wait_job
from tests.harness import Server, uid
from writegate.core.jobs import Job, JobRow, NewJob
from writegate.modules.jef_one.models import SessionRecord

SEED = (
    '{"entity_number": "1001", "employee_number": "00001", "session_id": "session-00001", '
    '"app_type": "mobile", "app_number": "001"}'
)

RESPONSE_FIELDS = {
    "is_accepted",
    "message",
    "operation",
    "job_id",
    "job_status",
    "target_table",
    "target_pk",
    "confirmation",
    "allowed_method",
    "error_type",
    "error_code",
    "errors",
    "error",
}


def _payload(entity: str, employee: str, session_id: str | None = None) -> dict[str, Any]:
    return {
        "entity_number": entity,
        "employee_number": employee,
        "session_id": session_id or uid("s-"),
        "app_type": "desktop",
        "app_number": "007",
    }


def test_seed_curl_payload_end_to_end(client: httpx.Client) -> None:
    """The seed's exact curl body is accepted (202, every field) and confirmed by GET."""
    for path, body in (
        ("/one-entities-post-one", {"entity_number": "1001", "entity_name": "Seed entity"}),
        (
            "/one-employees-post-one",
            {"entity_number": "1001", "employee_number": "00001", "employee_name": "Seed"},
        ),
    ):
        r = client.post(path, json=body)
        assert r.status_code == 202
        assert wait_job(client, r.json()["job_id"])["job_status"] == "succeeded"

    r = client.post(
        "/one-post-create-session-job",
        content=SEED,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 202
    body = r.json()
    assert set(body) == RESPONSE_FIELDS
    assert body["is_accepted"] is True
    assert body["operation"] == "create_session"
    # As committed: queued, or already running when the embedded worker took it at once.
    assert body["job_status"] in {"queued", "running"}
    assert body["target_table"] == "jef-one-sessions"
    assert body["target_pk"] == "session-00001"
    assert body["allowed_method"] == "POST"
    assert body["confirmation"] == (
        "GET /jef-one-get-session-by-session-id?session_id=session-00001"
    )
    assert body["errors"] == []
    assert body["error"] is None
    assert body["error_code"] is None

    job = wait_job(client, body["job_id"])
    assert job["job_status"] == "succeeded"
    assert job["result"] == {
        "session_id": "session-00001",
        "status": "verified",
        "failure_reason": None,
    }
    assert job["finished_at"] >= job["started_at"] >= job["created_at"]

    method, _, url = body["confirmation"].partition(" ")
    session = client.request(method, url).json()
    assert session["is_found"] is True
    assert session["status"] == "verified"
    assert session["entity_number"] == "1001"
    assert session["employee_number"] == "00001"
    assert session["application_type"] == "mobile"
    assert session["application_number"] == "001"
    assert session["failure_reason"] is None
    assert session["verified_at"] is not None
    assert session["job_id"] == body["job_id"]


def test_session_fails_with_reason_for_each_refusal(client: httpx.Client, entity: Any) -> None:
    """Unknown or inactive entity/employee ends the session `failed` with a clear reason."""
    active_entity, active_employee = entity()
    inactive_entity, its_employee = entity(active=False)
    e3, inactive_employee = entity(employee_active=False)
    cases = [
        (_payload("9998", "00002"), "entity 9998 does not exist"),
        (_payload(inactive_entity, its_employee), f"entity {inactive_entity} is not active"),
        (
            _payload(active_entity, "99999"),
            f"employee 99999 does not belong to entity {active_entity}",
        ),
        (
            _payload(e3, inactive_employee),
            f"employee {inactive_employee} of entity {e3} is not active",
        ),
    ]
    for payload, reason in cases:
        r = client.post("/one-post-create-session-job", json=payload)
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["job_id"])
        assert job["job_status"] == "succeeded"
        view = client.get(
            "/jef-one-get-session-by-session-id", params={"session_id": payload["session_id"]}
        ).json()
        assert view["status"] == "failed"
        assert view["failure_reason"] == reason
        assert view["verified_at"] is None
    ok = _payload(active_entity, active_employee)
    r = client.post("/one-post-create-session-job", json=ok)
    wait_job(client, r.json()["job_id"])
    view = client.get(
        "/jef-one-get-session-by-session-id", params={"session_id": ok["session_id"]}
    ).json()
    assert view["status"] == "verified"


def test_sessions_verified_together_each_get_their_own_outcome(
    client: httpx.Client, entity: Any
) -> None:
    """Posted at once (their jobs then run in shared batches, which look their entities and
    employees up together), each session ends as it would alone: two employees of one
    entity, one of them unknown; an inactive entity; an entity that does not exist."""
    active_entity, active_employee = entity()
    inactive_entity, its_employee = entity(active=False)
    cases = [
        (_payload(active_entity, active_employee), None),
        (
            _payload(active_entity, "99998"),
            f"employee 99998 does not belong to entity {active_entity}",
        ),
        (_payload(inactive_entity, its_employee), f"entity {inactive_entity} is not active"),
        (_payload("9997", active_employee), "entity 9997 does not exist"),
    ] * 3
    cases = [({**p, "session_id": uid("s-")}, reason) for p, reason in cases]
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        answers = list(
            pool.map(lambda c: client.post("/one-post-create-session-job", json=c[0]), cases)
        )
    for (payload, reason), r in zip(cases, answers, strict=True):
        assert r.status_code == 202, r.text
        assert wait_job(client, r.json()["job_id"])["job_status"] == "succeeded"
        view = client.get(
            "/jef-one-get-session-by-session-id", params={"session_id": payload["session_id"]}
        ).json()
        assert view["status"] == ("verified" if reason is None else "failed")
        assert view["failure_reason"] == reason


def test_same_session_id_twice_never_makes_two_sessions(
    client: httpx.Client, server: Server, entity: Any
) -> None:
    """A verified session_id is refused with 409; a failed one may be re-verified in place."""
    ent, emp = entity()
    sid = uid("dup-")
    first = client.post("/one-post-create-session-job", json=_payload("9997", emp, sid))
    wait_job(client, first.json()["job_id"])
    assert (
        client.get("/jef-one-get-session-by-session-id", params={"session_id": sid}).json()[
            "status"
        ]
        == "failed"
    )

    again = client.post("/one-post-create-session-job", json=_payload(ent, emp, sid))
    assert again.status_code == 202
    wait_job(client, again.json()["job_id"])
    view = client.get("/jef-one-get-session-by-session-id", params={"session_id": sid}).json()
    assert view["status"] == "verified"
    assert view["failure_reason"] is None

    third = client.post("/one-post-create-session-job", json=_payload(ent, emp, sid))
    assert third.status_code == 409
    body = third.json()
    assert body["is_accepted"] is False
    assert body["error_code"] == "SESSION_EXISTS"
    assert body["job_id"] == again.json()["job_id"]
    with server.services.db.read() as s:
        n = s.scalar(
            select(func.count()).select_from(SessionRecord).where(SessionRecord.session_id == sid)
        )
        jobs = server.services.jobs.find(s, tenant="jef-one", kind="jef_one.create_session")
    assert n == 1
    # The refused POST's job, written before the lookup found the session, was discarded.
    mine = {j.id for j in jobs if j.payload["session_id"] == sid}
    assert mine == {first.json()["job_id"], again.json()["job_id"]}


def test_fifty_concurrent_posts_of_one_session_accept_exactly_one(
    server: Server, entity: Any
) -> None:
    """50 racing POSTs with one session_id (one exclusive key): one 202, the rest 409."""
    ent, emp = entity()
    payload = _payload(ent, emp)
    sid = payload["session_id"]

    def post(_: int) -> httpx.Response:
        with server.client() as c:
            return c.post("/one-post-create-session-job", json=payload)

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(post, range(50)))
    codes = sorted(r.status_code for r in responses)
    if codes.count(202) != 1:  # say what became of the session and of each accepted job
        with server.client() as c:
            seen = [
                c.get(f"/jef-one-get-job-by-job-id?job_id={r.json()['job_id']}").json()
                for r in responses
                if r.status_code == 202
            ]
            seen.append(c.get(f"/jef-one-get-session-by-session-id?session_id={sid}").json())
        pytest.fail(f"{codes}: {seen}")
    assert codes.count(409) == 49, codes
    accepted = next(r.json() for r in responses if r.status_code == 202)
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error_code"] in ("JOB_IN_PROGRESS", "SESSION_EXISTS")
            assert r.json()["job_id"] == accepted["job_id"]
    with server.services.db.read() as s:
        jobs = server.services.jobs.find(s, tenant="jef-one", kind="jef_one.create_session")
    assert sum(1 for j in jobs if j.payload["session_id"] == payload["session_id"]) == 1


def test_job_get_for_unknown_and_foreign_ids(client: httpx.Client, server: Server) -> None:
    """An unknown job id, or another API's job id, is simply not found."""
    r = client.get("/jef-one-get-job-by-job-id", params={"job_id": "no-such-job"})
    assert r.status_code == 200
    assert r.json()["is_found"] is False
    with server.services.db.write() as s:
        # No worker runs this kind, so it stays queued until cancelled below.
        other = server.services.jobs.enqueue(s, kind="someone.else", payload={}, tenant=uid("t-"))
    r = client.get("/jef-one-get-job-by-job-id", params={"job_id": other.id})
    assert r.json()["is_found"] is False
    server.services.jobs.cancel(other.id)


def test_regression_a_job_id_in_upper_case_was_not_found(client: httpx.Client) -> None:
    """A job id is a UUID, case-insensitive on input (RFC 9562): in upper case it was
    `is_found: false`."""
    number = f"{uuid.uuid4().int % 9000 + 1000}"
    made = client.post("/one-entities-post-one", json={"entity_number": number, "entity_name": "U"})
    assert made.status_code == 202, made.text
    job_id = made.json()["job_id"]
    view = client.get("/jef-one-get-job-by-job-id", params={"job_id": job_id.upper()}).json()
    assert (view["is_found"], view["job_id"]) == (True, job_id)


def test_entity_and_employee_gets(client: httpx.Client, entity: Any) -> None:
    """The entity GET reports is_found/can_continue/entity_active; employees likewise."""
    ent, emp = entity()
    view = client.get("/jef-one-get-entity-by-entity-number", params={"entity_number": ent}).json()
    assert view["is_found"] is True
    assert view["can_continue"] is True
    assert view["entity_active"] is True
    assert view["employee_count"] == 1
    closed, _ = entity(active=False)
    view = client.get(
        "/jef-one-get-entity-by-entity-number", params={"entity_number": closed}
    ).json()
    assert (view["is_found"], view["can_continue"], view["entity_active"]) == (True, False, False)
    view = client.get(
        "/jef-one-get-entity-by-entity-number", params={"entity_number": "9996"}
    ).json()
    assert (view["is_found"], view["can_continue"]) == (False, False)
    view = client.get(
        "/jef-one-get-employee-by-employee-number",
        params={"entity_number": ent, "employee_number": emp},
    ).json()
    assert (view["is_found"], view["can_continue"], view["employee_active"]) == (True, True, True)


def test_employee_of_unknown_entity_fails_permanently(client: httpx.Client) -> None:
    """An employee cannot be registered under an entity that does not exist."""
    r = client.post(
        "/one-employees-post-one",
        json={"entity_number": "9995", "employee_number": "12345", "employee_name": "X"},
    )
    assert r.status_code == 202
    job = wait_job(client, r.json()["job_id"])
    assert job["job_status"] == "failed"
    assert job["attempts"] == 1
    assert job["error"] == "entity 9995 does not exist"


@pytest.mark.parametrize(
    "ctype", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_every_json_content_type_spelling_is_accepted_alike(
    client: httpx.Client, ctype: str
) -> None:
    """The fast JSON path and FastAPI's own path (other spellings) give the same 202."""
    body = _payload("1001", "00001")
    r = client.post(
        "/one-post-create-session-job", content=json.dumps(body), headers={"content-type": ctype}
    )
    assert r.status_code == 202, r.text
    got = r.json()
    assert got["is_accepted"] is True
    assert got["target_pk"] == body["session_id"]
    job = client.get("/jef-one-get-job-by-job-id", params={"job_id": got["job_id"]}).json()
    assert job["is_found"] is True
    assert job["target_pk"] == body["session_id"]


def _running_job(services: Any, s: Any, ent: str, emp: str, sid: str) -> Job:
    """A session job set running, so the embedded worker leaves it alone; it holds its key.

    Written due later: the embedded worker would otherwise take it as it is written."""
    job = services.jobs.enqueue_many(
        s,
        [
            NewJob(
                "jef_one.create_session",
                _payload(ent, emp, sid),
                "jef-one",
                exclusive_key=f"jef_one.create_session:{sid}",
                run_after=services.clock.now() + timedelta(hours=1),
            )
        ],
    )[0]
    assert isinstance(job, Job)
    s.execute(update(JobRow).where(JobRow.id == job.id).values(status="running"))
    return job


def _verified_session(services: Any, ent: str, emp: str, sid: str, job_id: str) -> Any:
    """The row a session job's final write leaves: the session, verified."""
    return session_row(sid, ent, emp, job_id, services.clock.now())


def test_a_post_racing_the_jobs_final_commit_answers_session_exists(
    server: Server, entity: Any
) -> None:
    """A POST that reaches the database while the job's final write commits sees its outcome."""
    ent, emp = entity()
    sid = uid("race-")
    services = server.services
    key = f"jef_one.create_session:{sid}"

    def post() -> httpx.Response:
        with server.client() as c:
            return c.post("/one-post-create-session-job", json=_payload(ent, emp, sid))

    with services.db.write() as s:
        job = _running_job(services, s, ent, emp, sid)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with services.db.write() as s:  # the job's final transaction, as its handler writes it
            services.db.lock(s, key)
            s.add(_verified_session(services, ent, emp, sid, job.id))
            s.execute(update(JobRow).where(JobRow.id == job.id).values(status="succeeded"))
            s.flush()
            racing = pool.submit(post)
            with pytest.raises(concurrent.futures.TimeoutError):
                racing.result(timeout=0.5)  # waits for this transaction
        r = racing.result(timeout=30)
    assert r.status_code == 409, r.text
    assert r.json()["error_code"] == "SESSION_EXISTS"
    assert r.json()["job_id"] == job.id
    with services.db.read() as s:
        jobs = services.jobs.find(s, tenant="jef-one", kind="jef_one.create_session")
    assert [j.id for j in jobs if j.payload["session_id"] == sid] == [job.id]


def test_a_verified_session_whose_key_is_held_answers_session_exists(
    server: Server, entity: Any
) -> None:
    """A verified session answers SESSION_EXISTS, not JOB_IN_PROGRESS, even with its key held.

    On PostgreSQL the accept's INSERT looks up only the sessions of the jobs it wrote; the
    refused ones are looked up on their own, so both paths answer alike.
    """
    ent, emp = entity()
    sid = uid("held-")
    services = server.services
    with services.db.write() as s:
        earlier = _running_job(services, s, ent, emp, sid)
        s.add(_verified_session(services, ent, emp, sid, earlier.id))
    with server.client() as c:
        r = c.post("/one-post-create-session-job", json=_payload(ent, emp, sid))
    assert r.status_code == 409, r.text
    assert r.json()["error_code"] == "SESSION_EXISTS"
    assert r.json()["job_id"] == earlier.id
    with services.db.read() as s:
        jobs = services.jobs.find(s, tenant="jef-one", kind="jef_one.create_session")
    assert [j.id for j in jobs if j.payload["session_id"] == sid] == [earlier.id]
    with services.db.write() as s:  # let the worker's reaper find nothing of ours running
        s.execute(update(JobRow).where(JobRow.id == earlier.id).values(status="succeeded"))


@pytest.mark.parametrize("status", ["queued", "running"])
def test_job_in_progress_names_the_holders_status(server: Server, entity: Any, status: str) -> None:
    """A 409 JOB_IN_PROGRESS gives the holding job's status, as `job_status` is documented.

    Regression: it was null (the refusal carried the holder's id only).
    """
    ent, emp = entity()
    sid = uid("busy-")
    services = server.services
    with services.db.write() as s:
        holder = _running_job(services, s, ent, emp, sid)
        s.execute(update(JobRow).where(JobRow.id == holder.id).values(status=status))
    try:
        with server.client() as c:
            r = c.post("/one-post-create-session-job", json=_payload(ent, emp, sid))
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["error_code"] == "JOB_IN_PROGRESS"
        assert body["job_id"] == holder.id
        assert body["job_status"] == status
        assert body["target_pk"] == sid
    finally:
        with services.db.write() as s:  # let the worker's reaper find nothing of ours active
            s.execute(update(JobRow).where(JobRow.id == holder.id).values(status="cancelled"))
