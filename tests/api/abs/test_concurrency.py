"""Optimistic concurrency and a replica following the changes feed under concurrent writes."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import select

from tests.api.abs.conftest import Client, assert_error, assert_ok, call, version_counter
from tests.harness import Server, hold_group_commit, wait_for
from writegate.modules.abs.models import AbsPackage
from writegate.modules.abs.service import WIRE_FIELDS, to_wire, write_changes


def test_twenty_concurrent_updates_one_wins(server: Server, abs_client: Client) -> None:
    """20 updates carrying the same starting version: exactly one wins, version moves once."""
    h = abs_client.headers
    with server.client() as c:
        created = assert_ok(call(c, "putDb", {"client_code": abs_client.code}, h))
    counter_before = version_counter(server)
    start = threading.Barrier(20, timeout=60)

    def update(i: int) -> dict[str, Any]:
        body = {
            "client_code": abs_client.code,
            "uid": created["uid"],
            "version": created["version"],
            "processing_status": f"RACER-{i}",
        }
        with server.client() as c:
            start.wait()
            return call(c, "putDb", body, h)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(update, range(20)))

    winners = [a for a in answers if a["status"] == "ok"]
    losers = [a for a in answers if a["status"] != "ok"]
    assert len(winners) == 1
    assert len(losers) == 19
    for loser in losers:
        assert_error(loser, "VERSION_CONFLICT")
    won = winners[0]["data"]
    assert version_counter(server) == counter_before + 1
    assert won["version"] == counter_before + 1
    with server.client() as c:
        current = assert_ok(
            call(c, "get", {"client_code": abs_client.code, "uid": created["uid"]}, h)
        )
    assert current == won
    assert current["processing_status"].startswith("RACER-")


def _fetch_changes(c: httpx.Client, client: Client, offset: int) -> list[dict[str, Any]]:
    body = {"client_code": client.code, "offset_version": offset, "limit": 37}
    rows: list[dict[str, Any]] = assert_ok(call(c, "getChanges", body, client.headers))
    return rows


def test_replica_converges_under_1000_concurrent_writes(server: Server, abs_client: Client) -> None:
    """A replica polling getChanges while 8 threads make 1,000 writes ends identical."""
    h = abs_client.headers
    writers, per_writer = 8, 125
    done = threading.Event()
    replica: dict[str, dict[str, Any]] = {}
    seen_versions: list[int] = []
    failures: list[Any] = []

    def write(seed: int) -> int:
        rng = random.Random(seed)
        mine: list[dict[str, Any]] = []
        writes = 0
        with server.client() as c:
            while writes < per_writer:
                roll = rng.random()
                if not mine or roll < 0.25:
                    body: dict[str, Any] = {"client_code": abs_client.code}
                    method = "putDb"
                elif roll < 0.32:
                    target = mine.pop(rng.randrange(len(mine)))
                    body = {"client_code": abs_client.code, "uid": target["uid"]}
                    method = "delete"
                else:
                    target = rng.choice(mine)
                    body = {
                        "client_code": abs_client.code,
                        "uid": target["uid"],
                        "version": target["version"],
                        "processing_status": f"W{seed}-{writes}",
                        "payment_import_initiation_id": writes,
                    }
                    method = "putDb"
                answer = call(c, method, body, h)
                writes += 1
                if answer["status"] != "ok":
                    failures.append(answer)
                    continue
                data = answer["data"]
                if method == "putDb":
                    mine = [m for m in mine if m["uid"] != data["uid"]] + [data]
        return writes

    follower_errors: list[BaseException] = []

    def follow() -> None:
        try:
            _follow()
        except BaseException as exc:  # surfaced by the assertion below
            follower_errors.append(exc)

    def _follow() -> None:
        offset = 0
        with server.client() as c:
            while True:
                finished = done.is_set()  # read before fetching so the last poll is complete
                rows = _fetch_changes(c, abs_client, offset)
                for row in rows:
                    assert row["version"] > offset
                    seen_versions.append(row["version"])
                    replica[row["uid"]] = row
                    offset = row["version"]
                if finished and not rows:
                    return

    follower = threading.Thread(target=follow)
    follower.start()
    with ThreadPoolExecutor(writers) as pool:
        total_writes = sum(pool.map(write, range(writers)))
    done.set()
    follower.join(120)
    assert not follower.is_alive()
    assert follower_errors == []
    assert total_writes == 1000
    # each writer only touches its own packages, so no write may have been refused
    assert failures == []
    assert seen_versions == sorted(seen_versions)
    assert len(seen_versions) == len(set(seen_versions))

    with server.services.db.read() as s:
        columns = (getattr(AbsPackage, name) for name in WIRE_FIELDS)
        rows = s.execute(select(*columns).where(AbsPackage.client_code == abs_client.code))
        truth = {r.uid: to_wire(r) for r in rows}
    assert len(truth) > 100
    assert any(r["state"] == 1 for r in truth.values())
    assert replica == truth


def test_one_batch_takes_each_counter_once_and_applies_its_changes_in_order(
    server: Server, abs_client: Client
) -> None:
    """putDb calls that share a group-commit batch bump the version counter once (and the id
    counter once for the creates); two updates of one package in it apply one after the
    other, the second seeing the version the first gave."""
    h = abs_client.headers
    with server.client() as c:
        created = assert_ok(call(c, "putDb", {"client_code": abs_client.code}, h))
    first = version_counter(server) + 1
    bodies = [
        {"client_code": abs_client.code, "id": created["id"], "version": created["version"]},
        {"client_code": abs_client.code, "id": created["id"], "version": first},
        {"client_code": abs_client.code},
    ]
    for body, status in zip(bodies, ("FIRST", "SECOND", "NEW-ONE"), strict=True):
        body["processing_status"] = status
    group = server.services.db.group
    saved = group.max_in_flight

    def queued() -> int:
        return sum(1 for q in group.queued() if q is write_changes)

    counter_updates: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE counters"):
            counter_updates.append(statement)

    def put(body: dict[str, Any]) -> dict[str, Any]:
        with server.client() as c:
            return call(c, "putDb", body, h)

    release, held = hold_group_commit(group)
    try:
        with ThreadPoolExecutor(3) as pool:
            answers = []
            for n, body in enumerate(bodies, start=1):  # queued in this order, one batch
                answers.append(pool.submit(put, body))
                wait_for(lambda n=n: queued() >= n, timeout=30, interval=0.01)
            server.services.db.listen("before_cursor_execute", count)
            release.set()
            held.result(30)
            got = [assert_ok(a.result(30)) for a in answers]
    finally:
        release.set()
        group.max_in_flight = saved
        server.services.db.unlisten("before_cursor_execute", count)
    assert len(counter_updates) == 2  # abs.version, then abs.package_id for the one create
    assert [g["version"] for g in got] == [first, first + 1, first + 2]
    assert [g["processing_status"] for g in got] == ["FIRST", "SECOND", "NEW-ONE"]
    assert got[0]["id"] == got[1]["id"] == created["id"]
    with server.client() as c:
        current = assert_ok(
            call(c, "get", {"client_code": abs_client.code, "id": created["id"]}, h)
        )
    assert current == got[1]
