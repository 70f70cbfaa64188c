"""The JSON admin API over real HTTP: auth matrix, tenants, filters, paging, actions, audit."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.console.conftest import IDLE, headers, status_of
from tests.harness import Server, uid

READS = [
    "/admin/api/me",
    "/admin/api/overview",
    "/admin/api/jobs",
    "/admin/api/jobs/00000000-0000-0000-0000-000000000000",
    "/admin/api/audit",
    "/admin/api/views",
    "/admin/api/views/bokamera/0",
]
ACTIONS = [
    "/admin/api/jobs/00000000-0000-0000-0000-000000000000/retry",
    "/admin/api/jobs/00000000-0000-0000-0000-000000000000/cancel",
    "/admin/api/jobs/retry",
    "/admin/api/jobs/cancel",
]


def assert_envelope(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The admin API's error envelope: error, message, fields."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == kind, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["fields"], list)
    return body


@pytest.mark.parametrize("path", READS)
def test_reads_need_an_operator_key(client: httpx.Client, make_principal: Any, path: str) -> None:
    """No key or an unknown key: 401; a key without operator/superadmin role: 403."""
    assert_envelope(client.get(path), 401, "unauthorized")
    assert_envelope(client.get(path, headers=headers("wg_nope")), 401, "unauthorized")
    _, plain = make_principal(roles=["bookingsupplier-administrator-write"])
    assert_envelope(client.get(path, headers=headers(plain)), 403, "forbidden")
    # an unknown job is a 404 to anyone allowed to read; everything else answers 200
    ok = 404 if "0000-000000000000" in path else 200
    _, reader = make_principal(roles=["operator"])
    assert client.get(path, headers=headers(reader)).status_code == ok
    _, bearer = make_principal(roles=["superadmin"])
    r = client.get(path, headers={"authorization": f"Bearer {bearer}"})
    assert r.status_code == ok, r.text


@pytest.mark.parametrize("path", ACTIONS)
def test_actions_need_a_superadmin_key(
    client: httpx.Client, make_principal: Any, path: str
) -> None:
    """No key: 401; another role or operator: 403; a superadmin gets past auth (404/200)."""
    body = {"ids": ["00000000-0000-0000-0000-000000000000"]}
    assert_envelope(client.post(path, json=body), 401, "unauthorized")
    for roles in (["bookingsupplier-administrator-write"], ["operator"]):
        _, key = make_principal(roles=roles)
        assert_envelope(client.post(path, json=body, headers=headers(key)), 403, "forbidden")
    _, admin = make_principal(roles=["superadmin"])
    r = client.post(path, json=body, headers=headers(admin))
    assert r.status_code == (404 if "/0000" in path else 200), r.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("limit=%C2%B2", "limit"),  # "²".isdigit() is True; int("²") raised: a 500
        ("before=abc", "before"),
        ("before=%C2%B2", "before"),
        ("before=99999999999999999999", "before"),
    ],
)
def test_bad_audit_params_answer_400(
    client: httpx.Client, admin: dict[str, str], query: str, field: str
) -> None:
    """The audit list checks limit and before."""
    r = client.get(f"/admin/api/audit?{query}", headers=admin)
    body = assert_envelope(r, 400, "validation")
    assert [f["field"] for f in body["fields"]] == [field]


def test_unknown_view_is_404(client: httpx.Client, admin: dict[str, str]) -> None:
    """A view that does not exist: 404; a non-numeric index: 400."""
    assert_envelope(client.get("/admin/api/views/nope/0", headers=admin), 404, "not_found")
    assert_envelope(client.get("/admin/api/views/bokamera/99", headers=admin), 404, "not_found")
    r = client.get("/admin/api/views/bokamera/x", headers=admin)
    assert_envelope(r, 400, "validation")
    r = client.get("/admin/api/views/bokamera/%C2%B2", headers=admin)
    assert_envelope(r, 400, "validation")


def test_operator_cannot_act(
    client: httpx.Client, make_principal: Any, make_job: Any, tenant: str, server: Server
) -> None:
    """The operator role reads but every action answers 403 and changes nothing."""
    _, key = make_principal(tenant=tenant, roles=["operator"])
    failed = make_job(tenant, "failed")
    queued = make_job(tenant)
    h = headers(key)
    assert client.get(f"/admin/api/jobs/{failed}", headers=h).status_code == 200
    assert_envelope(client.post(f"/admin/api/jobs/{failed}/retry", headers=h), 403, "forbidden")
    assert_envelope(client.post(f"/admin/api/jobs/{queued}/cancel", headers=h), 403, "forbidden")
    r = client.post("/admin/api/jobs/cancel", json={"ids": [queued]}, headers=h)
    assert_envelope(r, 403, "forbidden")
    assert status_of(server, failed) == "failed"
    assert status_of(server, queued) == "queued"


def test_operator_sees_only_its_tenant(
    client: httpx.Client, make_principal: Any, make_job: Any, admin: dict[str, str]
) -> None:
    """A tenant-bound operator lists, reads and counts only its tenant; asking for another: 403."""
    mine, other = uid("tenant-"), uid("tenant-")
    my_job, their_job = make_job(mine, "failed"), make_job(other, "failed")
    _, key = make_principal(tenant=mine, roles=["operator"])
    h = headers(key)
    ids = [j["id"] for j in client.get("/admin/api/jobs?limit=500", headers=h).json()["jobs"]]
    assert my_job in ids
    assert their_job not in ids
    assert {j["tenant"] for j in client.get("/admin/api/jobs", headers=h).json()["jobs"]} == {mine}
    assert_envelope(client.get(f"/admin/api/jobs?tenant={other}", headers=h), 403, "forbidden")
    assert_envelope(client.get(f"/admin/api/jobs/{their_job}", headers=h), 404, "not_found")
    kinds = client.get("/admin/api/overview", headers=h).json()["kinds"]
    idle = next(k for k in kinds if k["kind"] == IDLE)
    assert idle["counts"] == {"failed": 1}
    # the superadmin, and an operator of the global tenant "*", see both
    _, global_key = make_principal(tenant="*", roles=["operator"])
    for h2 in (admin, headers(global_key)):
        assert client.get(f"/admin/api/jobs/{their_job}", headers=h2).status_code == 200
        r = client.get(f"/admin/api/jobs?tenant={other}", headers=h2)
        assert [j["id"] for j in r.json()["jobs"]] == [their_job]


def _cursor(text: str) -> str:
    """A hand-made cursor of `text` (a list's cursors are opaque, but not secret)."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-01-02&until=2026-01-01", "until"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=%C2%B2", "limit"),
        ("since=999999w", "since"),  # before year 1: these were 500s (OverflowError)
        ("until=999999d", "until"),
        ("since=0001-01-01T00:00:00%2B01:00", "since"),
        ("until=9999-12-31T23:59:59-01:00", "until"),
        ("q=%00", "q"),  # matched every job on SQLite (a 400 from PostgreSQL's driver)
        ("kind=a%00b", "kind"),
        ("cursor=notacursor", "cursor"),
        # a time with an offset: an empty page on SQLite
        ("cursor=" + _cursor("2099-01-01T00:00:00+01:00|0190a"), "cursor"),
        ("kind=" + "k" * 201, "kind"),
    ],
)
def test_bad_filters_answer_400(
    client: httpx.Client, admin: dict[str, str], query: str, field: str
) -> None:
    """Each bad filter is a 400 in the admin envelope naming the field."""
    body = assert_envelope(client.get(f"/admin/api/jobs?{query}", headers=admin), 400, "validation")
    assert field in [f["field"] for f in body["fields"]], body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, ""),
        ({"ids": ["a"], "filter": {"status": "failed"}}, ""),
        ({"ids": []}, "ids"),
        ({"ids": ["x" * 37]}, "ids.0"),
        ({"filter": {"colour": "red"}}, "filter.colour"),
        ({"filter": {}}, "filter"),  # cancelled the newest 1,000 jobs of every tenant
        ({"filter": {"status": "", "q": ""}}, "filter"),
        ({"filter": {"status": "nope"}}, "status"),
        ({"ids": ["a"], "extra": 1}, "extra"),
    ],
)
def test_bad_bulk_bodies_answer_400(
    client: httpx.Client, admin: dict[str, str], body: Any, field: str
) -> None:
    """Bulk action bodies are checked field by field; nothing is done."""
    r = client.post("/admin/api/jobs/retry", json=body, headers=admin)
    got = assert_envelope(r, 400, "validation")
    assert field in [f["field"] for f in got["fields"]], got


def test_bulk_needs_json(client: httpx.Client, admin: dict[str, str]) -> None:
    """Malformed JSON is a 400, another content type a 415."""
    r = client.post(
        "/admin/api/jobs/retry",
        content=b"{not json",
        headers={**admin, "content-type": "application/json"},
    )
    assert_envelope(r, 400, "validation")
    r = client.post(
        "/admin/api/jobs/retry", content=b"ids=1", headers={**admin, "content-type": "text/plain"}
    )
    assert_envelope(r, 415, "content_type")


def test_keyset_pages_cover_every_job_once(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str
) -> None:
    """Pages of 3 walk 7 jobs newest first with no gap or repeat; the last page has no cursor."""
    made = [make_job(tenant, "succeeded") for _ in range(7)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"tenant": tenant, "limit": "3", **({"cursor": cursor} if cursor else {})}
        body = client.get("/admin/api/jobs", params=params, headers=admin).json()
        seen += [j["id"] for j in body["jobs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    assert len(seen) == 7


def test_filters_by_status_kind_text_and_time(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str
) -> None:
    """status, kind, q (id prefix or part of the exclusive key) and since narrow the list."""
    failed = make_job(tenant, "failed")
    keyed = make_job(tenant, "cancelled", exclusive_key=f"console:{tenant}:company-42")
    base = {"tenant": tenant}

    def ids(**params: str) -> set[str]:
        r = client.get("/admin/api/jobs", params={**base, **params}, headers=admin)
        assert r.status_code == 200, r.text
        return {j["id"] for j in r.json()["jobs"]}

    assert ids(status="failed") == {failed}
    assert ids(status="failed,cancelled") == {failed, keyed}
    assert ids(kind=IDLE) == {failed, keyed}
    assert ids(kind="other.kind") == set()
    assert ids(q=failed[:13]) == {failed}
    assert ids(q="company-42") == {keyed}
    assert ids(q="%") == set()
    assert ids(since="1h") == {failed, keyed}
    assert ids(until="2000-01-01T00:00:00") == set()


def test_retry_and_cancel_one_job(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str, server: Server
) -> None:
    """Retry queues a failed job; cancel cancels a queued one; both are in the audit log."""
    failed, queued = make_job(tenant, "failed", error="boom"), make_job(tenant)
    r = client.post(f"/admin/api/jobs/{failed}/retry", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["ok"] is True
    assert status_of(server, failed) == "queued"
    r = client.post(f"/admin/api/jobs/{queued}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    assert status_of(server, queued) == "cancelled"
    detail = client.get(f"/admin/api/jobs/{failed}", headers=admin).json()
    assert [e["action"] for e in detail["audit"]] == ["retry"]
    entries = client.get("/admin/api/audit?limit=50", headers=admin).json()["entries"]
    mine = [e for e in entries if set(e["job_ids"]) & {failed, queued}]
    assert [e["action"] for e in mine] == ["cancel", "retry"]
    assert all(e["actor"].startswith("user-") and e["at"].endswith("Z") for e in mine)


def test_refused_actions_say_why(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str, server: Server
) -> None:
    """Retry of a succeeded or queued job, cancel of a final one, an unknown id: 409/404."""
    done, queued = make_job(tenant, "succeeded"), make_job(tenant)
    body = assert_envelope(
        client.post(f"/admin/api/jobs/{done}/retry", headers=admin), 409, "conflict"
    )
    assert "succeeded" in body["message"]
    assert "only failed or cancelled" in body["message"]
    body = assert_envelope(
        client.post(f"/admin/api/jobs/{queued}/retry", headers=admin), 409, "conflict"
    )
    assert "queued" in body["message"]
    body = assert_envelope(
        client.post(f"/admin/api/jobs/{done}/cancel", headers=admin), 409, "conflict"
    )
    assert "already succeeded" in body["message"]
    assert_envelope(client.post("/admin/api/jobs/nope/retry", headers=admin), 404, "not_found")
    assert status_of(server, done) == "succeeded"
    assert status_of(server, queued) == "queued"


def test_retry_while_the_key_is_held_is_refused_cleanly(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str, server: Server
) -> None:
    """A cancelled job whose exclusive key another active job holds: 409 naming the holder."""
    key = f"console:{tenant}:sync"
    old = make_job(tenant, "cancelled", exclusive_key=key)
    holder = make_job(tenant, "running", exclusive_key=key)
    body = assert_envelope(
        client.post(f"/admin/api/jobs/{old}/retry", headers=admin), 409, "conflict"
    )
    assert holder in body["message"]
    assert body["result"]["holder"] == holder
    r = client.post("/admin/api/jobs/retry", json={"ids": [old]}, headers=admin)
    assert r.status_code == 200
    assert r.json()["results"][0]["reason"] == "key_held"
    assert status_of(server, old) == "cancelled"
    assert status_of(server, holder) == "running"
    # once the holder is done, the retry goes through
    assert client.post(f"/admin/api/jobs/{holder}/cancel", headers=admin).status_code == 200
    assert client.post(f"/admin/api/jobs/{old}/retry", headers=admin).status_code == 200
    assert status_of(server, old) == "queued"


def test_bulk_retry_by_filter(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str, server: Server
) -> None:
    """Bulk retry of a filter touches exactly the matching jobs and writes one audit entry."""
    failed = [make_job(tenant, "failed") for _ in range(3)]
    done = make_job(tenant, "succeeded")
    r = client.post(
        "/admin/api/jobs/retry",
        json={"filter": {"tenant": tenant, "status": "failed"}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["done"], out["refused"]) == (3, 0)
    assert all(status_of(server, j) == "queued" for j in failed)
    assert status_of(server, done) == "succeeded"
    entries = client.get("/admin/api/audit", headers=admin).json()["entries"]
    entry = next(e for e in entries if e["id"] == out["audit_id"])
    assert entry["action"] == "bulk_retry"
    assert sorted(entry["job_ids"]) == sorted(failed)
    assert entry["detail"]["filter"] == {"tenant": tenant, "status": "failed"}


def test_bulk_cancel_by_ids_reports_each(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str, server: Server
) -> None:
    """Bulk cancel by ids: one result per id, final jobs refused, the rest cancelled."""
    queued, done = make_job(tenant), make_job(tenant, "succeeded")
    r = client.post("/admin/api/jobs/cancel", json={"ids": [queued, done]}, headers=admin)
    assert r.status_code == 200, r.text
    results = {x["id"]: x for x in r.json()["results"]}
    assert results[queued]["ok"] is True
    assert results[done]["reason"] == "final"
    assert status_of(server, queued) == "cancelled"


def test_bulk_by_filter_stays_in_the_operators_tenant(
    client: httpx.Client, make_principal: Any, make_job: Any, server: Server
) -> None:
    """A tenant-bound operator cannot act through a filter either: nothing is touched."""
    mine, other = uid("tenant-"), uid("tenant-")
    theirs = make_job(other, "failed")
    _, key = make_principal(tenant=mine, roles=["operator"])
    r = client.post(
        "/admin/api/jobs/retry", json={"filter": {"status": "failed"}}, headers=headers(key)
    )
    assert_envelope(r, 403, "forbidden")
    assert status_of(server, theirs) == "failed"


def test_job_detail_masks_secrets(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str
) -> None:
    """Passwords, tokens and keys in the payload are shown as ***; the rest as it is."""
    payload = {"user": "ann", "Password": "hunter2", "nested": [{"api_token": "t0k"}], "pin": 1234}
    job = make_job(tenant, "failed", payload=payload, error="Traceback...\nValueError: x")
    body = client.get(f"/admin/api/jobs/{job}", headers=admin).json()
    assert body["payload"] == {
        "user": "ann",
        "Password": "***",
        "nested": [{"api_token": "***"}],
        "pin": "***",
    }
    assert body["error"] == "Traceback...\nValueError: x"
    assert body["can_retry"] is True
    assert "hunter2" not in client.get(f"/console/jobs/{job}", headers=admin).text


def test_job_detail_says_what_a_job_waits_for(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str
) -> None:
    """A job after an active one shows it and that it waits; its cancel releases the job."""
    first = make_job(tenant)
    then = make_job(tenant, after_id=first)
    body = client.get(f"/admin/api/jobs/{then}", headers=admin).json()
    assert (body["after_id"], body["waiting_on"]) == (first, first)
    page = client.get(f"/console/jobs/{then}", headers=admin).text
    assert f'href="/console/jobs/{first}"' in page
    assert "(waiting for it to finish)" in page
    assert client.post(f"/admin/api/jobs/{first}/cancel", headers=admin).status_code == 200
    body = client.get(f"/admin/api/jobs/{then}", headers=admin).json()
    assert (body["after_id"], body["waiting_on"]) == (first, None)
    page = client.get(f"/console/jobs/{then}", headers=admin).text
    assert "(waiting for it to finish)" not in page


def test_overview_figures(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str
) -> None:
    """Counts per kind and status, oldest queued age, failures and throughput, database."""
    make_job(tenant, "failed")
    make_job(tenant, "queued")
    body = client.get("/admin/api/overview", headers=admin).json()
    idle = next(k for k in body["kinds"] if k["kind"] == IDLE)
    assert idle["counts"]["failed"] >= 1
    assert idle["oldest_queued_seconds"] is not None
    assert idle["failed_last_hour"] >= 1
    assert len(body["throughput_per_minute"]["failed"]) == 60
    assert sum(body["throughput_per_minute"]["failed"][-2:]) >= 1, body
    assert body["database"]["dialect"] in ("sqlite", "postgresql")
    assert "workers_note" in body


def test_unknown_admin_path_and_method(client: httpx.Client, admin: dict[str, str]) -> None:
    """A wrong method or path under /admin/api answers the same JSON envelope."""
    assert_envelope(client.get("/admin/api/jobs/x/retry", headers=admin), 405, "method_not_allowed")
    assert_envelope(client.get("/admin/api/nothing", headers=admin), 404, "not_found")


def test_a_deep_page_starts_an_index_range_at_its_cursor(server: Server) -> None:
    """The keyset page's plan seeks into ix_jobs_created_id (a scan would cost ~ its depth)."""
    from datetime import datetime

    from sqlalchemy import text

    from writegate.core.jobs.operator import JobFilter, page_query

    q = page_query(JobFilter(), limit=50, after=(datetime(2026, 1, 1), "x"))
    with server.services.db.read() as s:
        dialect = s.get_bind().dialect
        sql = str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in s.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "SEARCH jobs USING INDEX ix_jobs_created_id (created_at<?)" in plan, plan
        else:
            s.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(str(r[0]) for r in s.execute(text("EXPLAIN " + sql)))
            assert "ix_jobs_created_id" in plan, plan
            assert "Index Cond: (created_at <=" in plan, plan


def test_regression_an_entry_is_seen_only_by_the_tenant_whose_jobs_it_names(
    client: httpx.Client, make_principal: Any, make_job: Any
) -> None:
    """A superadmin's entries were filed under the superadmin's own tenant: its operators saw
    other tenants' job ids, statuses and filters (and a job's page, others' refusals). An
    entry goes to the one tenant whose jobs it names; one naming several, to every-tenant
    operators only."""
    home, b, c = uid("home-"), uid("b-"), uid("c-")
    _, root = make_principal(tenant=home, roles=["superadmin"])  # acts on every tenant
    su = headers(root)
    ops = {t: headers(make_principal(tenant=t, roles=["operator"])[1]) for t in (home, b, c)}
    _, everyone = make_principal(tenant="*", roles=["operator"])
    b_job, c_job = make_job(b, "failed"), make_job(c, "queued")
    one = client.post(f"/admin/api/jobs/{b_job}/retry", headers=su).json()["audit_id"]
    both = client.post("/admin/api/jobs/retry", json={"ids": [b_job, c_job]}, headers=su).json()[
        "audit_id"
    ]

    def seen(h: dict[str, str]) -> set[int]:
        entries = client.get("/admin/api/audit?limit=500", headers=h).json()["entries"]
        return {e["id"] for e in entries} & {one, both}

    assert seen(ops[home]) == set()
    assert seen(ops[b]) == {one}
    assert seen(ops[c]) == set()
    assert seen(headers(everyone)) == {one, both}
    on_c = client.get(f"/admin/api/jobs/{c_job}", headers=ops[c]).json()["audit"]
    assert on_c == []  # the mixed entry names c's job only as refused, and b's as retried
    on_b = client.get(f"/admin/api/jobs/{b_job}", headers=ops[b]).json()["audit"]
    assert [e["id"] for e in on_b] == [one]


def test_regression_a_jobs_entries_outlast_a_thousand_newer_ones(
    client: httpx.Client, admin: dict[str, str], make_job: Any, tenant: str, server: Server
) -> None:
    """A job's page found its entries among the newest 1,000 of the log only: a run of
    sign-ins dropped its history."""
    from writegate.core import audit_log

    failed = make_job(tenant, "failed", error="boom")
    entry = client.post(f"/admin/api/jobs/{failed}/retry", headers=admin).json()["audit_id"]
    with server.services.db.write() as s:
        for _ in range(1_001):
            audit_log.record(
                s,
                at=server.services.clock.now(),
                actor="x",
                tenant="t",
                action="sign_in",
                job_ids=[],
            )
    detail = client.get(f"/admin/api/jobs/{failed}", headers=admin).json()
    assert [e["id"] for e in detail["audit"]] == [entry]


def test_regression_admin_api_answers_could_be_cached(client: httpx.Client, admin: Any) -> None:
    """Its answers hold jobs' payloads and errors: `no-store`, as the console's pages."""
    for path in ("/admin/api/me", "/admin/api/jobs", "/admin/api/overview", "/admin/api/audit"):
        r = client.get(path, headers=admin)
        assert (r.status_code, r.headers.get("cache-control")) == (200, "no-store"), path
