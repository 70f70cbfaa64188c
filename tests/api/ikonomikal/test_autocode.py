"""Codes: a blank f001 gets an auto code unique per subscriber; a taken code is refused."""

from __future__ import annotations

from typing import Any

from tests.api.ikonomikal.conftest import OK, SAVE, Iko, race, rsp
from tests.harness import Server
from writegate.core.audit import next_value


def test_blank_code_gets_next_auto_code_skipping_taken_ones(iko: Iko) -> None:
    """Auto codes count up per subscriber and skip codes already saved by hand."""
    iko.must_token(1)
    assert iko.save("000002", "Typed by hand")["parCode"] == ["000002"]
    codes = []
    for _ in range(2):
        iko.must_token(1)
        answer = iko.save("", "Auto")
        assert answer["rspPrc"] == OK
        codes += answer["parCode"]
    assert codes == ["000001", "000003"]
    assert [r["f001"] for r in iko.read_all()["rowData"]] == ["000001", "000002", "000003"]


def test_concurrent_auto_codes_are_distinct(connect: Any, server: Server) -> None:
    """Twelve racing auto-coded saves of two users of one subscriber get twelve codes."""
    first = connect()
    second = connect(subs_id=first.user.subs_id)
    bodies = []
    for iko in (first, second):
        for _ in range(6):
            iko.must_token(1)
            bodies.append(iko.save_body("", "Concurrent"))
    answers = race(server, SAVE, bodies)
    assert all(a["rspPrc"] == OK for a in answers), answers
    codes = [a["parCode"][0] for a in answers]
    assert len(set(codes)) == 12
    assert sorted(codes) == [f"{n:06d}" for n in range(1, 13)]
    listed = first.read_all()["rowData"]
    assert sorted(r["f001"] for r in listed) == sorted(codes)


def test_duplicate_code_is_refused_and_keeps_the_token(iko: Iko) -> None:
    """1000092 names the code; the token survives for the next save."""
    iko.must_token(1)
    assert iko.save("FIN", "Finance")["rspPrc"] == OK
    iko.must_token(1)
    assert iko.save("FIN", "Again")["rspPrc"] == rsp(
        1000092, "Document FIN already exists.", ("FIN", "f001")
    )
    assert iko.save("fin", "Other case")["rspPrc"] == rsp(
        1000092, "Document fin already exists.", ("fin", "f001")
    )
    assert iko.save("FIN2", "Finance 2")["rspPrc"] == OK
    [row] = iko.read_all(["FIN"])["rowData"]
    assert row["f002"] == "Finance"


def test_concurrent_duplicates_one_wins_the_rest_keep_their_tokens(
    iko: Iko, server: Server
) -> None:
    """Of ten racing saves of one code one succeeds; the nine refused burn no token."""
    for _ in range(10):
        iko.must_token(1)
    answers = race(server, SAVE, [iko.save_body("DUP", f"Dup {i}") for i in range(10)])
    assert sum(a["rspPrc"] == OK for a in answers) == 1
    dup = rsp(1000092, "Document DUP already exists.", ("DUP", "f001"))
    assert sum(a["rspPrc"] == dup for a in answers) == 9
    for i in range(9):
        assert iko.save(f"AFTER{i}", "Token kept")["rspPrc"] == OK
    assert iko.save("AFTER9", "None left")["rspPrc"]["rspID"] == 1000105
    assert iko.read_all()["rowTotal"] == 10


def test_regression_codes_whose_capitals_are_longer_are_saved(iko: Iko) -> None:
    """A code of 20 characters or fewer is saved however long its capitals ("ß" is "SS"):
    PostgreSQL refused these, its case-free key column being as short as the code."""
    codes = ["ß" * 11, "ﬃ" * 10, "ŉ" * 20, "ß" * 10]
    for code in codes:
        iko.must_token(1)
        assert iko.save(code, "Long capitals")["parCode"] == [code]
    iko.must_token(1)
    same = "SS" * 10  # the capitals of "ß" * 10
    assert iko.save(same, "Same capitals")["rspPrc"] == rsp(
        1000092, f"Document {same} already exists.", (same, "f001")
    )
    assert sorted(r["f001"] for r in iko.read_all(codes)["rowData"]) == sorted(codes)


def test_auto_codes_go_on_past_999999(iko: Iko, server: Server) -> None:
    """Auto codes are zero-padded to six digits; after 999999 they have seven."""
    with server.services.db.write() as s:
        next_value(s, f"ikonomikal.ss07.code.{iko.user.subs_id}", 999_998)
    codes = []
    for _ in range(2):
        iko.must_token(1)
        codes += iko.save("", "Auto")["parCode"]
    assert codes == ["999999", "1000000"]
