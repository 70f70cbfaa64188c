"""Token and save calls that share a group-commit batch are written a few statements per batch."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tests.api.ikonomikal.conftest import OK, SAVE, TOKEN, Iko, rsp
from tests.harness import Server, hold_group_commit, wait_for


def _batched(
    server: Server, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """POST every call so that all of them share one batch; answers, and statements by kind."""
    group = server.services.db.group
    saved = group.max_in_flight
    statements: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.split(None, 1)[0]
        table = re.search(r"\b(?:UPDATE|FROM|INTO)\s+(\w+)", statement)
        statements[f"{verb} {table[1] if table else ''}"] += 1

    def queued() -> int:  # this module's calls (the embedded worker queues its own writes)
        writes = ("_issue_many", "_save_many")
        return sum(1 for q in group.queued() if getattr(q, "__name__", "") in writes)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        with server.client() as c:
            r = c.post(path, json=body)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    release, held = hold_group_commit(group)
    try:
        with ThreadPoolExecutor(len(calls)) as pool:
            answers: list[Future[dict[str, Any]]] = []
            for n, (path, body) in enumerate(calls, start=1):
                answers.append(pool.submit(post, path, body))
                wait_for(lambda n=n: queued() >= n, timeout=30, interval=0.01)
            server.services.db.listen("before_cursor_execute", count)
            release.set()
            held.result(30)
            got = [a.result(30) for a in answers]
    finally:
        release.set()
        group.max_in_flight = saved
        server.services.db.unlisten("before_cursor_execute", count)
    return got, statements


def test_tokens_of_one_batch_are_issued_with_one_insert(
    connect: Callable[..., Iko], server: Server
) -> None:
    """Five token calls of two sessions in one batch: one read of the sessions, one INSERT of
    core tokens and one of process tokens; each session then holds its tokens."""
    first = connect()
    second = connect(subs_id=first.user.subs_id)
    body = {"prgInf": {"pMODL": "SS", "pPRGM": "SS07", "pPRGDSC": ""}}
    calls = [
        (TOKEN, {"pgProcTkn": {"procID": proc, **body}, **iko.session()})
        for iko, proc in ((first, 1), (first, 1), (second, 1), (first, 3), (second, 2))
    ]
    answers, statements = _batched(server, calls)
    assert [a["rspID"] for a in answers] == [0] * 5, answers
    assert statements["SELECT ikonomikal_sessions"] == 1
    assert statements["INSERT process_tokens"] == 1
    assert statements["INSERT ikonomikal_proc_tokens"] == 1
    assert [first.save("", "A")["rspPrc"], first.save("", "B")["rspPrc"]] == [OK, OK]
    assert first.save("", "C")["rspPrc"]["rspID"] == 1000105  # the two tokens are used
    assert second.save("", "D")["rspPrc"] == OK
    assert len(first.read_all()["rowData"]) == 3


def test_saves_of_one_batch_share_the_counter_and_one_insert(
    connect: Callable[..., Iko], server: Server
) -> None:
    """Four adds of two sessions of one subscriber in one batch: the auto codes come from one
    counter bump, in order, skipping a code typed by hand; one INSERT writes the records."""
    first = connect()
    second = connect(subs_id=first.user.subs_id)
    first.must_token(1)
    assert first.save("", "Before")["parCode"] == ["000001"]
    first.must_token(1)
    assert first.save("000003", "By hand")["rspPrc"] == OK
    for iko in (first, first, second, second):
        iko.must_token(1)
    calls = [
        (SAVE, first.save_body("", "Auto 1")),
        (SAVE, second.save_body("", "Auto 2")),
        (SAVE, first.save_body("FIN", "Typed")),
        (SAVE, second.save_body("", "Auto 3")),
    ]
    answers, statements = _batched(server, calls)
    assert [a["rspPrc"] for a in answers] == [OK] * 4, answers
    assert [a["parCode"] for a in answers] == [["000002"], ["000004"], ["FIN"], ["000005"]]
    assert statements["INSERT ikonomikal_ss07"] == 1
    assert statements["SELECT ikonomikal_sessions"] == 1
    # one bump for the batch's three auto codes, one more for the code typed by hand
    assert statements["UPDATE counters"] == 2
    rows = {r["f001"]: r["f002"] for r in first.read_all()["rowData"]}
    assert rows == {
        "000001": "Before",
        "000002": "Auto 1",
        "000003": "By hand",
        "000004": "Auto 2",
        "000005": "Auto 3",
        "FIN": "Typed",
    }


def test_a_refused_save_in_a_batch_keeps_its_token_and_the_others_are_written(
    connect: Callable[..., Iko], server: Server
) -> None:
    """Two saves of one code in one batch: the first is written, the second refused with
    1000092 and its token kept; an auto-coded save beside them is written too."""
    iko = connect()
    for _ in range(3):
        iko.must_token(1)
    calls = [
        (SAVE, iko.save_body("DUP", "First")),
        (SAVE, iko.save_body("dup", "Second")),
        (SAVE, iko.save_body("", "Auto")),
    ]
    answers, _ = _batched(server, calls)
    assert answers[0]["rspPrc"] == OK
    assert answers[1]["rspPrc"] == rsp(1000092, "Document dup already exists.", ("dup", "f001"))
    assert answers[2]["rspPrc"] == OK
    assert answers[2]["parCode"] == ["000001"]
    assert iko.save("OTHER", "Token kept")["rspPrc"] == OK
    rows = {r["f001"]: r["f002"] for r in iko.read_all()["rowData"]}
    assert rows == {"DUP": "First", "000001": "Auto", "OTHER": "Token kept"}
