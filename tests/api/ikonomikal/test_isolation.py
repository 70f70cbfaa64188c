"""Subscriber isolation: a user never sees or changes another subscriber's records."""

from __future__ import annotations

from typing import Any

from tests.api.ikonomikal.conftest import OK, rsp


def test_subscribers_do_not_see_or_change_each_other(connect: Any) -> None:
    """Same codes live side by side; reads, edits and deletes stay in one's own subscriber."""
    a, b = connect(), connect()
    for iko, text in ((a, "A Finance"), (b, "B Finance")):
        iko.must_token(1)
        assert iko.save("FIN", text)["rspPrc"] == OK
        iko.must_token(1)
        assert iko.save("", text)["parCode"] == ["000001"]
    a.must_token(1)
    assert a.save("AONLY", "Only A")["rspPrc"] == OK

    listed = b.read_all()
    assert [(r["f001"], r["f002"]) for r in listed["rowData"]] == [
        ("000001", "B Finance"),
        ("FIN", "B Finance"),
    ]
    assert listed["rowTotal"] == 2
    missing = rsp(9000010, "Document AONLY does not exist.", ("AONLY", "parCode"))
    b.must_token(3)
    assert b.read(["AONLY"])["rspPrc"] == missing
    b.must_token(0)
    assert b.save("AONLY", "Hijack", cmd=1)["rspPrc"] == rsp(
        9000010, "Document AONLY does not exist.", ("AONLY", "f001")
    )
    b.must_token(2)
    assert b.delete(["AONLY"])["rspPrc"] == missing

    crossing = {**b.save_body("AONLY", "Hijack", cmd=1), "subsID": a.user.subs_id}
    b.must_token(0)
    assert b.post("/bcss_wbcl_wa_ss/api/ss_02_ss07_sav", crossing)["rspPrc"] == rsp(
        1000107,
        f"User must be logged in on subscriber {a.user.subs_id}.",
        (a.user.subs_id, "subsID"),
    )
    rows = {r["f001"]: r["f002"] for r in a.read_all()["rowData"]}
    assert rows == {"000001": "A Finance", "FIN": "A Finance", "AONLY": "Only A"}
