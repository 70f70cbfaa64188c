"""The sync itself: counts, re-runs, changes, progress, exclusivity, failures."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from tests.api.bokamera.conftest import (
    SETTINGS,
    SYNC,
    customers,
    start_sync,
    wait_done,
)
from tests.harness import Server, wait_for
from writegate.core.jobs import JobRow
from writegate.core.text import NUL_MESSAGE
from writegate.modules.bokamera.models import CustomerRow, UserSyncRow


def test_full_sync_then_rerun_then_ten_changes(
    client: httpx.Client, vaka: Any, company: Any
) -> None:
    """5,000 users: all created; a re-run creates/updates 0; 10 changed users: 10 updated."""
    sim = vaka(5000)
    co = company(sim)

    accepted = start_sync(client, co)
    assert accepted["Status"] == 0
    assert accepted["StatusName"] == "Pending"
    assert accepted["CompanyId"] == co.id
    first = wait_done(client, co, accepted["Id"])
    assert (first["Status"], first["StatusName"], first["ErrorMessage"]) == (2, "Completed", None)
    assert (first["UsersFound"], first["UsersCreated"], first["UsersUpdated"]) == (5000, 5000, 0)
    synced = customers(client, co)
    assert len(synced) == 5000
    assert len({c["VakaUserId"] for c in synced}) == 5000
    by_vaka = {c["VakaUserId"]: c for c in synced}
    user = sim.state.users[42]
    assert by_vaka[user["id"]]["Email"] == user["email"]
    assert by_vaka[user["id"]]["Firstname"] == user["firstName"]

    rerun = wait_done(client, co, start_sync(client, co)["Id"])
    assert (rerun["Status"], rerun["UsersFound"], rerun["UsersCreated"], rerun["UsersUpdated"]) == (
        2,
        5000,
        0,
        0,
    )

    changed = sim.state.change(10)
    third = wait_done(client, co, start_sync(client, co)["Id"])
    assert (third["Status"], third["UsersFound"], third["UsersCreated"], third["UsersUpdated"]) == (
        2,
        5000,
        0,
        10,
    )
    after = {c["VakaUserId"]: c for c in customers(client, co)}
    assert len(after) == 5000
    for vaka_id in changed:
        assert after[vaka_id]["Phone"].endswith("9")
        assert after[vaka_id]["Phone"] != by_vaka[vaka_id]["Phone"]

    listed = client.get(SYNC, params={"Status": 2}, headers=co.headers).json()
    assert listed["Total"] == 3
    assert [r["Id"] for r in listed["Results"]] == [third["Id"], rerun["Id"], first["Id"]]
    assert client.get(SYNC, params={"Status": 0}, headers=co.headers).json()["Results"] == []


def test_progress_is_visible_while_running(client: httpx.Client, vaka: Any, company: Any) -> None:
    """A GET during a slow sync shows Processing with partial counters."""
    sim = vaka(60, latency=0.15, max_page_size=5)
    co = company(sim)
    sync_id = start_sync(client, co)["Id"]

    def partial() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"{SYNC}/{sync_id}", headers=co.headers).json()
        found = body["UsersFound"] or 0
        return body if body["Status"] == 1 and 0 < found < 60 else None

    seen = wait_for(partial, timeout=60, interval=0.02)
    assert seen["StatusName"] == "Processing"
    assert seen["UsersCreated"] == seen["UsersFound"]
    done = wait_done(client, co, sync_id)
    assert (done["Status"], done["UsersFound"], done["UsersCreated"]) == (2, 60, 60)


def test_concurrent_posts_one_wins_one_409(client: httpx.Client, vaka: Any, company: Any) -> None:
    """Two racing POSTs for one company: one accepted, one 409 naming the running job."""
    sim = vaka(100, latency=0.1, max_page_size=10)
    co = company(sim)
    results: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as c:
            barrier.wait()
            results.append(c.post(SYNC, json={}, headers=co.headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_status = {r.status_code: r for r in results}
    assert sorted(by_status) == [200, 409]
    winner = by_status[200].json()
    error = by_status[409].json()["ResponseStatus"]
    assert error["ErrorCode"] == "Conflict"
    assert winner["Id"] in error["Message"]
    assert error["Meta"]["Id"] == winner["Id"]
    listed = client.get(SYNC, headers=co.headers).json()
    assert [r["Id"] for r in listed["Results"]] == [winner["Id"]]

    assert wait_done(client, co, winner["Id"])["Status"] == 2
    again = start_sync(client, co)
    assert wait_done(client, co, again["Id"])["UsersCreated"] == 0


def test_two_companies_sync_in_parallel(client: httpx.Client, vaka: Any, company: Any) -> None:
    """Exclusivity is per company: two companies both run, each gets only its own customers."""
    sim_a = vaka(300, seed=1, latency=0.1, max_page_size=30)
    sim_b = vaka(200, seed=2, latency=0.1, max_page_size=30)
    a, b = company(sim_a), company(sim_b)
    sync_a, sync_b = start_sync(client, a)["Id"], start_sync(client, b)["Id"]
    # B was accepted while A was still active: the exclusive key is per company.
    assert client.get(f"{SYNC}/{sync_a}", headers=a.headers).json()["Status"] in (0, 1)
    done_a, done_b = wait_done(client, a, sync_a), wait_done(client, b, sync_b)
    assert (done_a["Status"], done_a["UsersCreated"]) == (2, 300)
    assert (done_b["Status"], done_b["UsersCreated"]) == (2, 200)
    ids_a = {c["VakaUserId"] for c in customers(client, a)}
    ids_b = {c["VakaUserId"] for c in customers(client, b)}
    assert ids_a == {u["id"] for u in sim_a.state.users}
    assert ids_b == {u["id"] for u in sim_b.state.users}


def test_transient_failures_are_retried_and_complete(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """503s from Vaka outlast the connector's own retries; the job is retried and completes."""
    sim = vaka(120, max_page_size=40)
    sim.state.fail_next = 6  # 2 whole job attempts (3 tries each) fail before Vaka recovers
    co = company(sim)
    sync_id = start_sync(client, co)["Id"]
    done = wait_done(client, co, sync_id)
    assert (done["Status"], done["UsersFound"], done["UsersCreated"], done["ErrorMessage"]) == (
        2,
        120,
        120,
        None,
    )
    assert sim.state.failures_injected == 6
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, sync_id)
    assert job is not None
    assert job.attempts == 3
    assert len(customers(client, co)) == 120


def test_random_failure_rate_still_converges(client: httpx.Client, vaka: Any, company: Any) -> None:
    """With 30% of Vaka requests failing the sync still ends with exact counters."""
    sim = vaka(200, seed=7, fail_rate=0.3, max_page_size=20)
    co = company(sim)
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert (done["Status"], done["UsersFound"], done["UsersCreated"]) == (2, 200, 200)
    assert sim.state.failures_injected > 0
    assert len({c["VakaUserId"] for c in customers(client, co)}) == 200


def test_bad_credentials_fail_permanently(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """Vaka's 401 is not retried: Status 3 with a clear message, nothing synced."""
    sim = vaka(50)
    co = company(sim, password="wrong")
    sync_id = start_sync(client, co)["Id"]
    done = wait_done(client, co, sync_id)
    assert (done["Status"], done["StatusName"]) == (3, "Failed")
    assert "rejected the credentials" in done["ErrorMessage"]
    assert "HTTP 401" in done["ErrorMessage"]
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, sync_id)
    assert job is not None
    assert job.attempts == 1
    assert customers(client, co) == []
    failed = client.get(SYNC, params={"Status": 3}, headers=co.headers).json()
    assert [r["Id"] for r in failed["Results"]] == [sync_id]


def test_bad_data_fails_permanently(client: httpx.Client, vaka: Any, company: Any) -> None:
    """A user without an id on page 2: Failed with the page named; page 1 stays synced."""
    sim = vaka(30, max_page_size=10)
    sim.state.corrupt_page = 2
    co = company(sim)
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert done["Status"] == 3
    assert "unusable data" in done["ErrorMessage"]
    assert "page 2" in done["ErrorMessage"]
    assert (done["UsersFound"], done["UsersCreated"]) == (10, 10)
    assert len(customers(client, co)) == 10


def test_unreachable_vaka_fails_after_retries(
    client: httpx.Client, vaka: Any, company: Any
) -> None:
    """Nothing listening at the endpoint: retried, then Failed saying it is unreachable."""
    sim = vaka(1)
    co = company(sim)
    sim.stop()
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert done["Status"] == 3
    assert "unreachable" in done["ErrorMessage"]
    assert sim.url in done["ErrorMessage"]


def test_existing_customer_is_matched_by_email(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """A customer entered before the sync (no Vaka id) is linked by email, not duplicated."""
    sim = vaka(20, seed=11)
    co = company(sim)
    target = sim.state.users[5]
    manual_id = str(uuid.uuid4())
    now = server.services.clock.now()
    with server.services.db.write() as s:
        s.add(
            CustomerRow(
                id=manual_id,
                company_id=co.id,
                firstname="Typed",
                lastname="By hand",
                email=target["email"].upper(),
                created_at=now,
                updated_at=now,
            )
        )
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert (done["UsersFound"], done["UsersCreated"], done["UsersUpdated"]) == (20, 19, 1)
    rows = customers(client, co)
    assert len(rows) == 20
    linked = next(c for c in rows if c["Id"] == manual_id)
    assert linked["VakaUserId"] == target["id"]
    assert linked["Firstname"] == target["firstName"]


def _hand_entered(server: Server, company_id: str, email: str, age: timedelta) -> str:
    """A customer typed in by hand (no Vaka id), created `age` ago; its id."""
    row_id = str(uuid.uuid4())
    at = server.services.clock.now() - age
    with server.services.db.write() as s:
        s.add(
            CustomerRow(
                id=row_id,
                company_id=company_id,
                firstname="Typed",
                email=email,
                created_at=at,
                updated_at=at,
            )
        )
    return row_id


def test_oldest_hand_entered_customer_of_an_email_is_linked(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """Two hand-entered customers share a Vaka user's email: the oldest is linked, one kept."""
    sim = vaka(20, seed=12)
    co = company(sim)
    email = sim.state.users[7]["email"]
    newer = _hand_entered(server, co.id, email.upper(), timedelta(minutes=1))
    older = _hand_entered(server, co.id, email.title(), timedelta(hours=1))
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert (done["UsersFound"], done["UsersCreated"], done["UsersUpdated"]) == (20, 19, 1)
    rows = {c["Id"]: c for c in customers(client, co)}
    assert len(rows) == 21
    assert rows[older]["VakaUserId"] == sim.state.users[7]["id"]
    assert rows[older]["Email"] == email
    assert rows[newer]["VakaUserId"] is None


def test_synced_user_is_not_linked_to_a_later_hand_entered_customer(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """A customer typed in after the sync, with a synced user's email, stays on its own."""
    sim = vaka(20, seed=13)
    co = company(sim)
    first = wait_done(client, co, start_sync(client, co)["Id"])
    assert (first["UsersCreated"], first["UsersUpdated"]) == (20, 0)
    manual = _hand_entered(server, co.id, sim.state.users[3]["email"], timedelta(0))
    rerun = wait_done(client, co, start_sync(client, co)["Id"])
    assert (rerun["Status"], rerun["UsersCreated"], rerun["UsersUpdated"]) == (2, 0, 0)
    rows = {c["Id"]: c for c in customers(client, co)}
    assert len(rows) == 21
    assert rows[manual]["VakaUserId"] is None
    assert rows[manual]["Firstname"] == "Typed"


def test_same_vaka_id_twice_on_one_page_fails_permanently(
    client: httpx.Client, vaka: Any, company: Any
) -> None:
    """A Vaka id twice on page 2: Failed with the id named; page 1 stays synced, page 2 not."""
    sim = vaka(30, max_page_size=10)
    sim.state.users[14] = {**sim.state.users[12], "firstName": "Twin"}
    co = company(sim)
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert done["Status"] == 3
    assert "unusable data" in done["ErrorMessage"]
    assert "appears twice on one page" in done["ErrorMessage"]
    assert sim.state.users[12]["id"] in done["ErrorMessage"]
    assert (done["UsersFound"], done["UsersCreated"]) == (10, 10)
    assert len(customers(client, co)) == 10


def test_regression_a_nul_in_vaka_data_fails_the_sync_at_once(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """A NUL in a user's field on page 2 is unusable data: Failed at the first attempt, the
    field named. PostgreSQL refused the page (retried as if transient, then the statement
    and the page's customers shown in ErrorMessage); SQLite stored it."""
    sim = vaka(30, max_page_size=10)
    sim.state.users[14] = {**sim.state.users[14], "firstName": "a\x00b"}
    co = company(sim)
    sync_id = start_sync(client, co)["Id"]
    done = wait_done(client, co, sync_id)
    assert done["Status"] == 3
    assert "page 2, user #5: firstName" in done["ErrorMessage"]
    assert NUL_MESSAGE in done["ErrorMessage"]
    assert "SQL" not in done["ErrorMessage"]
    assert (done["UsersFound"], done["UsersCreated"]) == (10, 10)
    assert len(customers(client, co)) == 10
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, sync_id)
    assert job is not None
    assert job.attempts == 1


def test_a_sync_stops_at_its_most_users(
    client: httpx.Client, vaka: Any, company: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Vaka whose pages never end (here: more users than the cap) fails the sync once a page
    would take it past WRITEGATE_BOKAMERA_MAX_USERS; the pages before stay synced."""
    monkeypatch.setenv("WRITEGATE_BOKAMERA_MAX_USERS", "25")
    sim = vaka(40, max_page_size=10)
    co = company(sim)
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert done["Status"] == 3
    assert "page 3 takes the sync past 25 users" in done["ErrorMessage"]
    assert (done["UsersFound"], done["UsersCreated"]) == (20, 20)
    assert len(customers(client, co)) == 20


def test_regression_an_endpoint_at_the_unspecified_address_reached_this_host(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """`http://0.0.0.0:<port>` connected to whatever listened on this host (a company
    administrator could probe the server's own ports). By default such an address is not
    connected: the sync fails at once, permanently, saying why; Vaka saw nothing."""
    sim = vaka(5)
    co = company(sim)
    port = sim.server.server_address[1]
    r = client.put(SETTINGS, json={"ApiEndpoint": f"http://0.0.0.0:{port}"}, headers=co.headers)
    assert r.status_code == 200, r.text
    sync_id = start_sync(client, co)["Id"]
    done = wait_done(client, co, sync_id)
    assert (done["Status"], done["StatusName"]) == (3, "Failed")
    assert (
        f"Axema Vaka at http://0.0.0.0:{port}: 0.0.0.0 resolves to 0.0.0.0" in done["ErrorMessage"]
    )
    assert "not connected" in done["ErrorMessage"]
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, sync_id)
    assert job is not None
    assert job.attempts == 1
    assert sim.state.requests == 0
    assert customers(client, co) == []


def test_regression_settings_changed_mid_sync_resumed_at_the_page_of_another_system(
    client: httpx.Client, vaka: Any, company: Any
) -> None:
    """An administrator points the settings at another Vaka system while a sync runs, and the
    old one then fails: the retried attempt resumed at the old system's next page on the new
    one, skipping the new system's first pages, and reported Completed. A sync resumes only
    on the system it read; on another it starts again from page 1."""
    old = vaka(50, max_page_size=10, latency=0.3)
    new = vaka(50, max_page_size=10, seed=7, username="other", password="otherpw")
    co = company(old)
    sync_id = start_sync(client, co)["Id"]

    def found() -> bool:
        r = client.get(f"{SYNC}/{sync_id}", headers=co.headers)
        return (r.json()["UsersFound"] or 0) >= 10

    wait_for(found, timeout=30, interval=0.05)
    r = client.put(
        SETTINGS,
        json={"ApiEndpoint": new.url, "Username": "other", "Password": "otherpw"},
        headers=co.headers,
    )
    assert r.status_code == 200, r.text
    old.state.fail_next = 10_000  # the old system goes away: this attempt fails, is retried
    done = wait_done(client, co, sync_id)
    assert (done["Status"], done["UsersFound"]) == (2, 50), done
    emails = {c["Email"] for c in customers(client, co)}
    assert {f"user{i}.7@vaka.example" for i in range(50)} <= emails


def test_regression_syncs_whose_jobs_were_pruned_stayed_as_rows_forever(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """The job retention deletes a finished sync's job, which holds its status: the sync then
    answered 404 and left the list, but its row stayed in the table for good. The
    housekeeping forgets such syncs (docs/bokamera.md says how long a sync is kept)."""
    sim = vaka(3)
    co = company(sim)
    sync_id = start_sync(client, co)["Id"]
    assert wait_done(client, co, sync_id)["Status"] == 2
    services = server.services
    with services.db.write() as s:  # as the retention's prune does, for this job alone
        s.execute(delete(JobRow).where(JobRow.id == sync_id))
    r = client.get(f"{SYNC}/{sync_id}", headers=co.headers)
    assert r.status_code == 404, r.text
    with services.db.read() as s:
        assert s.get(UserSyncRow, sync_id) is not None  # the row the job left behind
    done = server.app.state.maintenance.run_once()  # the embedded worker's housekeeping
    assert done["bokamera.pruned_syncs"] >= 1
    with services.db.read() as s:
        assert s.get(UserSyncRow, sync_id) is None
    listed = client.get(SYNC, headers=co.headers).json()
    assert (listed["Total"], listed["Results"]) == (0, [])


def test_regression_a_sync_job_lost_the_request_id(
    client: httpx.Client, server: Server, vaka: Any, company: Any
) -> None:
    """The sync's job carries the id of the request that started it, as every job does (its
    write runs on a commit thread, where the request's context was not: it carried none)."""
    co = company(vaka(2))
    rid = f"req-{uuid.uuid4().hex[:12]}"
    r = client.post(SYNC, json={}, headers={**co.headers, "x-request-id": rid})
    assert (r.status_code, r.headers["x-request-id"]) == (200, rid), r.text
    sync_id = r.json()["Id"]
    wait_done(client, co, sync_id)
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, sync_id)
    assert job is not None
    assert job.trace_context == {"request_id": rid}
