"""Tenant isolation, list search fields with total_records, and feed paging."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.api.abs.conftest import Client, assert_error, assert_ok, call, new_client
from tests.harness import Server


def test_tenant_isolation(client: httpx.Client, server: Server, make_principal: Any) -> None:
    """Two clients never see or touch each other's packages, even by uid or id."""
    a = new_client(server, make_principal)
    b = new_client(server, make_principal)
    pa = assert_ok(call(client, "putDb", {"client_code": a.code}, a.headers))
    pb = assert_ok(call(client, "putDb", {"client_code": b.code}, b.headers))
    # b names a's package under its own client code: not found, not changed
    for method, body in [
        ("get", {"client_code": b.code, "uid": pa["uid"]}),
        ("get", {"client_code": b.code, "id": pa["id"]}),
        ("putDb", {"client_code": b.code, "uid": pa["uid"], "processing_step": "STOLEN"}),
        ("delete", {"client_code": b.code, "id": pa["id"]}),
    ]:
        assert_error(call(client, method, body, b.headers), "PACKAGE_NOT_FOUND")
    assert (
        assert_ok(call(client, "get", {"client_code": a.code, "uid": pa["uid"]}, a.headers)) == pa
    )
    for owner, mine in [(a, pa), (b, pb)]:
        listed = call(client, "getList", {"client_code": owner.code}, owner.headers)
        assert assert_ok(listed) == [mine]
        assert listed["total_records"] == 1
        feed = call(client, "getChanges", {"client_code": owner.code}, owner.headers)
        assert assert_ok(feed) == [mine]
        assert feed["total_records"] == 1


def test_list_search_fields_and_paging(
    client: httpx.Client, abs_client: Client, clock: Any
) -> None:
    """Filters combine; total_records counts every match, not just the page."""
    h = abs_client.headers
    code = abs_client.code
    clock.advance(timedelta(days=-10))
    old = [
        assert_ok(call(client, "putDb", {"client_code": code, "processing_step": "OLD"}, h))
        for _ in range(3)
    ]
    clock.advance(timedelta(days=10))
    new = [
        assert_ok(
            call(
                client,
                "putDb",
                {"client_code": code, "processing_status": "DONE" if i % 2 else "NEW"},
                h,
            )
        )
        for i in range(7)
    ]
    old_day = old[0]["create_date"][:10]
    new_day = new[0]["create_date"][:10]
    assert old_day < new_day

    def search(**fields: Any) -> tuple[list[dict[str, Any]], int]:
        answer = call(client, "getList", {"client_code": code, **fields}, h)
        return assert_ok(answer), answer["total_records"]

    rows, total = search()
    assert total == 10
    assert [r["id"] for r in rows] == sorted(r["id"] for r in old + new)

    rows, total = search(limit=4, page=2)
    assert total == 10
    assert [r["id"] for r in rows] == [r["id"] for r in (old + new)[4:8]]
    rows, total = search(limit=4, page=3)
    assert (len(rows), total) == (2, 10)
    rows, total = search(limit=4, page=4)
    assert (rows, total) == ([], 10)

    rows, total = search(limit=4, skip_total_records="yes")
    assert (len(rows), total) == (4, 4)

    rows, total = search(date_to=old_day)
    assert ({r["id"] for r in rows}, total) == ({r["id"] for r in old}, 3)
    rows, total = search(date_from=new_day, date_to=new_day)
    assert total == 7
    rows, total = search(processing_step="OLD")
    assert total == 3
    rows, total = search(processing_status="DONE", date_from=new_day)
    assert ({r["id"] for r in rows}, total) == ({r["id"] for r in new[1::2]}, 3)
    rows, total = search(processing_status="DONE", processing_step="OLD")
    assert (rows, total) == ([], 0)


def test_changes_feed_pages_in_version_order(client: httpx.Client, abs_client: Client) -> None:
    """Paging by offset_version visits every latest change exactly once, oldest first."""
    h = abs_client.headers
    code = abs_client.code
    made = [assert_ok(call(client, "putDb", {"client_code": code}, h)) for _ in range(5)]
    # touch the first again: it moves to the end of the feed with its new version
    moved = assert_ok(
        call(
            client, "putDb", {"client_code": code, "uid": made[0]["uid"], "processing_step": "M"}, h
        )
    )
    gone = assert_ok(call(client, "delete", {"client_code": code, "uid": made[2]["uid"]}, h))
    expected = [made[1], made[3], made[4], moved, gone]

    pages, offset = [], 0
    while True:
        answer = call(
            client, "getChanges", {"client_code": code, "offset_version": offset, "limit": 2}, h
        )
        rows = assert_ok(answer)
        if not rows:
            assert answer["total_records"] == 0
            break
        assert answer["total_records"] == len(expected) - sum(len(p) for p in pages)
        pages.append(rows)
        offset = rows[-1]["version"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [r for p in pages for r in p] == expected
