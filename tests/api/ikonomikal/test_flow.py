"""The documented flow over real HTTP: login, process token, the seed's save, read back."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from tests.api.ikonomikal.conftest import (
    OK,
    SAVE,
    SEED_EXAMPLE,
    USER_ROLES,
    Iko,
    User,
    rsp,
)
from tests.harness import Server, spawn, uid


def local(at: datetime, offset: int) -> tuple[int, int]:
    """(YYYYMMDD, HHMMSS) of a UTC time shifted by timeOffSet minutes."""
    t = at - timedelta(minutes=offset)
    return int(t.strftime("%Y%m%d")), int(t.strftime("%H%M%S"))


def test_seed_example_save_and_read_back(iko: Iko, clock: Any) -> None:
    """The seed's example request gives the seed's example response, and reads back."""
    assert set(iko.login_answer) >= {"subsID", "intGID", "userID", "sessID", "userName", "rspPrc"}
    assert iko.login_answer["subsID"] == iko.user.subs_id
    assert iko.login_answer["userID"] == iko.user.email
    token = iko.token(1)
    assert token == {**OK, "rspPrc": OK}

    body = copy.deepcopy(SEED_EXAMPLE)
    body.update({k: iko.session()[k] for k in ("subsID", "intGID", "userID", "sessID")})
    before = local(clock.now().replace(microsecond=0), -180)
    answer = iko.post(SAVE, body)
    after = local(clock.now(), -180)

    assert set(answer) == {"parCode", "modInf", "rspPrc"}
    assert answer["parCode"] == ["FIN"]
    assert answer["rspPrc"] == OK
    mod = answer["modInf"]
    assert set(mod) == {"mUser", "mGroup", "mDate", "mTime"}
    assert (mod["mUser"], mod["mGroup"]) == ("API01", "FORAPIACCESS01")
    assert before <= (mod["mDate"], mod["mTime"]) <= after

    read = iko.read_all(["FIN"])
    assert read["rowTotal"] == 1
    [row] = read["rowData"]
    assert row == {
        "modInf": mod,
        "f001": "FIN",
        "f002": "Finance",
        "f003": "Finance",
        "f004": 0,
        "l001": "Code",
        "l002": "Description",
        "l003": "Other Description",
        "l004": "Expense Type",
        "isRead": 1,
        "rowId": 1,
    }


def test_time_offset_gives_client_local_stamp(iko: Iko, clock: Any) -> None:
    """mDate/mTime are UTC shifted by timeOffSet: +300 (UTC-5) is eight hours before -180."""
    clock.advance(timedelta(days=3, hours=5))
    iko.offset = 300
    iko.login()
    iko.must_token(1)
    before = local(clock.now().replace(microsecond=0), 300)
    answer = iko.save("WEST", "West")
    assert answer["rspPrc"] == OK
    assert (
        before <= (answer["modInf"]["mDate"], answer["modInf"]["mTime"]) <= local(clock.now(), 300)
    )


def test_edit_with_save_token(iko: Iko) -> None:
    """cmdStat 1 with a SAVE (procID 0) token edits the record; the stamp moves."""
    iko.must_token(1)
    assert iko.save("HR", "Human Resources", f004=1)["parCode"] == ["HR"]
    iko.must_token(0)
    answer = iko.save("hr", "People", cmd=1, f003="Staff", f004=2)
    assert answer["rspPrc"] == OK
    assert answer["parCode"] == ["HR"]
    [row] = iko.read_all(["HR"])["rowData"]
    assert (row["f001"], row["f002"], row["f003"], row["f004"]) == ("HR", "People", "Staff", 2)


def test_edit_of_missing_code(iko: Iko) -> None:
    """Editing a code the subscriber does not have is refused and keeps the token."""
    iko.must_token(0)
    answer = iko.save("NOPE", "x", cmd=1)
    assert answer["rspPrc"] == rsp(9000010, "Document NOPE does not exist.", ("NOPE", "f001"))
    assert answer["parCode"] == []
    iko.must_token(1)
    assert iko.save("NOPE", "Now here")["rspPrc"] == OK
    assert iko.save("NOPE", "Edited", cmd=1)["rspPrc"] == OK


def test_delete_extension(iko: Iko) -> None:
    """Delete is all or none; a failed delete keeps its token."""
    for code in ("D1", "D2"):
        iko.must_token(1)
        assert iko.save(code, f"Dept {code}")["rspPrc"] == OK
    iko.must_token(2)
    missing = iko.delete(["D1", "D9"])
    assert missing["rspPrc"] == rsp(9000010, "Document D9 does not exist.", ("D9", "parCode"))
    assert iko.read_all()["rowTotal"] == 2
    answer = iko.delete(["d1", "D2"])
    assert answer["rspPrc"] == OK
    assert answer["parCode"] == ["D1", "D2"]
    assert answer["modInf"]["mUser"] == "API01"
    assert iko.read_all() == {"rowData": [], "rowTotal": 0, "rspPrc": OK}
    assert iko.delete(["D1"])["rspPrc"] == rsp(
        1000104, "DELETE token for SS07 does not exist or has expired.", ("SS07", "pPRGM")
    )


def test_list_pages_by_code(iko: Iko) -> None:
    """An empty parCode lists the subscriber's records by code, a page at a time."""
    for code in ("C3", "C1", "C2"):
        iko.must_token(1)
        assert iko.save(code, code)["rspPrc"] == OK
    iko.must_token(3)
    page = iko.read(rowStart=1, rowCount=1)
    assert page["rspPrc"] == OK
    assert page["rowTotal"] == 3
    assert [(r["f001"], r["rowId"]) for r in page["rowData"]] == [("C2", 2)]
    assert [r["f001"] for r in iko.read_all()["rowData"]] == ["C1", "C2", "C3"]


def test_failed_save_does_not_burn_the_token(iko: Iko) -> None:
    """A save refused after the token check gives the token back; nothing is written."""
    iko.must_token(1)
    blank = iko.save("FIN", "", l002="Department Name")
    assert blank["rspPrc"] == rsp(
        1000086, "Department Name cannot be blank.", ("Department Name", "f002")
    )
    assert iko.read_all()["rowTotal"] == 0
    assert iko.save("FIN", "Finance")["rspPrc"] == OK
    again = iko.save("FIN2", "Finance")
    assert again["rspPrc"]["rspID"] == 1000105


def test_cli_provisioned_user_logs_in_and_saves(server: Server, client: Any) -> None:
    """`writegate principals create` with the documented attributes gives a working user."""
    email, subs = f"{uid('cli')}@example.com", uid("2")
    proc = spawn(
        [
            "principals",
            "create",
            "--name",
            email,
            "--tenant",
            subs,
            "--roles",
            ",".join(USER_ROLES),
            "--password",
            "pw-from-cli",
            "--attr",
            "user_code=API07",
            "--attr",
            "group=FORAPIACCESS07",
            "--attr",
            "user_name=Api Seven",
        ],
        server.env,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    iko = Iko(client, User(email=email, subs_id=subs, password="pw-from-cli"))
    answer = iko.login()
    assert (answer["subsID"], answer["userName"]) == (subs, "Api Seven")
    iko.must_token(1)
    saved = iko.save("", "Auto coded")
    assert saved["rspPrc"] == OK
    assert (saved["modInf"]["mUser"], saved["modInf"]["mGroup"]) == ("API07", "FORAPIACCESS07")
    assert saved["parCode"] == ["000001"]
