"""Every refusal answers HTTP 200 in the rspPrc envelope with a numbered message."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.ikonomikal.conftest import (
    LOGIN,
    OK,
    READ,
    SAVE,
    TOKEN,
    Iko,
    User,
    rsp,
)
from tests.harness import Server, backend, start_server, uid

BLANK_SAVE = {"parCode": [], "modInf": {"mUser": "", "mGroup": "", "mDate": 0, "mTime": 0}}
BLANK_LOGIN = {
    "subsID": "",
    "intGID": "",
    "userID": "",
    "sessID": "",
    "userName": "",
    "dteFmt": 1,
    "dteSpFmt": 1,
    "serverTimeOffSet": 0,
    "clientTimeZone": 0,
}


def token_rsp(answer: dict[str, Any]) -> dict[str, Any]:
    """The token call answers flat, as the vendor does, and repeats it in rspPrc."""
    flat = {k: answer[k] for k in ("rspID", "rspMsg", "rspChr")}
    assert answer["rspPrc"] == flat
    return flat


# -- 1000086 blank ------------------------------------------------------------------------------


def test_blank_description_uses_the_label_sent(iko: Iko) -> None:
    """1000086 fills [1] from l002, or from the default label when l002 is blank too."""
    iko.must_token(1)
    assert iko.save("FIN", "  ", l002="Dept Name") == {
        **BLANK_SAVE,
        "rspPrc": rsp(1000086, "Dept Name cannot be blank.", ("Dept Name", "f002")),
    }
    assert iko.save("FIN", "", l002="")["rspPrc"] == rsp(
        1000086, "Description cannot be blank.", ("Description", "f002")
    )


def test_regression_a_blank_description_was_reported_before_the_session_and_program(
    connect: Any,
) -> None:
    """The record is checked last, after the session, subscriber, program and token (a bad
    session with a blank f002 answered 1000086, not 1000144); a record refused after the
    token gives the token back."""
    iko = connect(roles=("ikonomikal", "ikonomikal:admin"), attrs={"programs": "SS07,SS06"})
    blank = iko.save_body("FIN", "")
    assert iko.post(SAVE, {**blank, "sessID": "bogus"})["rspPrc"] == rsp(
        1000144, "User session does not exist."
    )
    ghost = uid("9")
    assert iko.post(SAVE, {**blank, "subsID": ghost})["rspPrc"] == rsp(
        1000135, f"Subscriber {ghost} does not exist.", (ghost, "subsID")
    )
    other = iko.save_body("FIN", "")
    other["prgInf"]["pPRGM"] = "SS06"
    assert iko.post(SAVE, other)["rspPrc"] == rsp(
        9000011, "Program SS06 cannot be used with SS07.", ("SS06", "pPRGM"), ("SS07", "")
    )
    assert iko.post(SAVE, blank)["rspPrc"] == rsp(
        1000105, "NEW token for SS07 does not exist or has expired.", ("SS07", "pPRGM")
    )
    iko.must_token(1)
    assert iko.post(SAVE, blank)["rspPrc"] == rsp(
        1000086, "Description cannot be blank.", ("Description", "f002")
    )
    assert iko.save("FIN", "Finance")["rspPrc"] == OK  # the refused record left the token


def test_regression_ignored_record_fields_were_validated(iko: Iko) -> None:
    """modInf, isRead and rowId are ignored, whatever they hold: a .NET client that leaves
    modInf unset sends null, and was refused (9000002). The server stamps the save."""
    iko.must_token(1)
    plain = iko.save("IGN0", "Ignored")
    assert plain["rspPrc"] == OK, plain
    junk = (
        {"modInf": None, "isRead": None, "rowId": None},
        {"modInf": {"mDate": None, "mUser": 5}, "isRead": "x", "rowId": 1.5},
    )
    for i, fields in enumerate(junk, start=1):
        iko.must_token(1)
        answer = iko.save(f"IGN{i}", "Ignored", **fields)
        assert answer["rspPrc"] == OK, answer
        assert answer["modInf"]["mUser"] == plain["modInf"]["mUser"]


def test_blank_code_on_edit(iko: Iko) -> None:
    """An edit needs the code it edits."""
    iko.must_token(0)
    assert iko.save("", "Finance", cmd=1, l001="Dept Code")["rspPrc"] == rsp(
        1000086, "Dept Code cannot be blank.", ("Dept Code", "f001")
    )


def test_blank_login_fields(client: httpx.Client) -> None:
    """Blank userID (labelled by userCap) and blank userPW."""
    r = client.post(LOGIN, json={"userID": " ", "userPW": "x", "userCap": "E-mail"})
    assert r.status_code == 200
    assert r.json() == {
        **BLANK_LOGIN,
        "rspPrc": rsp(1000086, "E-mail cannot be blank.", ("E-mail", "userID")),
    }
    r = client.post(LOGIN, json={"userID": "someone@example.com", "userPW": ""})
    assert r.json()["rspPrc"] == rsp(1000086, "Password cannot be blank.", ("Password", "userPW"))


# -- 1000097 / 1000099 / 1000101 ----------------------------------------------------------------


def test_program_not_in_subscription(connect: Any) -> None:
    """1000097 for an unknown program, a wrong program group, or a program left out."""
    iko = connect()
    assert token_rsp(iko.token(1, program="SS99")) == rsp(
        1000097, "Program SS99 is not in the subscription.", ("SS99", "pPRGM")
    )
    assert token_rsp(iko.token(1, module="AC")) == rsp(
        1000097, "Program SS07 is not in the subscription.", ("SS07", "pPRGM")
    )
    other = connect(attrs={"programs": "SS06"}, roles=("ikonomikal", "ikonomikal:admin"))
    assert token_rsp(other.token(1)) == rsp(
        1000097, "Program SS07 is not in the subscription.", ("SS07", "pPRGM")
    )
    assert other.save("FIN", "Finance")["rspPrc"] == rsp(
        1000097, "Program SS07 is not in the subscription.", ("SS07", "pPRGM")
    )


@pytest.mark.parametrize("proc_id", [4, 26, 27, -1])
def test_invalid_process_type(iko: Iko, proc_id: int) -> None:
    """procIDs SS07 has no process for (4 close .. 26) and unknown ones are refused."""
    assert token_rsp(iko.token(proc_id)) == rsp(
        1000099, f"Invalid process type {proc_id}.", (str(proc_id), "procID")
    )


def test_user_not_authorized(connect: Any) -> None:
    """1000101 when no role grants the process; a per-process role grants only that one."""
    reader = connect(roles=("ikonomikal", "ikonomikal:ss07:data"))
    email = reader.user.email
    assert token_rsp(reader.token(1)) == rsp(
        1000101,
        f"User {email} is not authorized for SS07 NEW.",
        (email, "userID"),
        ("SS07 NEW", "procID"),
    )
    assert token_rsp(reader.token(3)) == OK
    assert reader.read()["rspPrc"] == OK


class _CountingHasher:
    """The server's real argon2 hasher, counting the passwords it verifies."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.verified = 0

    def verify(self, stored: str, password: str) -> bool:
        self.verified += 1
        return bool(self.inner.verify(stored, password))

    def hash(self, password: str) -> str:
        return str(self.inner.hash(password))


def test_login_without_ikonomikal_role_is_no_password_oracle(
    server: Server, client: httpx.Client, new_user: Any
) -> None:
    """A principal of another module cannot log in here, and the answer does not tell
    whether its password was right: the same 1000141 as a wrong password, after the same
    password check."""
    user = new_user(roles=("abs-client",))
    auth = server.services.auth
    spy = _CountingHasher(auth._hasher)
    auth._hasher = spy
    answers, checks = [], []
    try:
        for password in (user.password, user.password + "-wrong"):
            before = spy.verified
            r = client.post(LOGIN, json={"userID": user.email, "userPW": password})
            answers.append(r.json())
            checks.append(spy.verified - before)
    finally:
        auth._hasher = spy.inner
    bad = {**BLANK_LOGIN, "rspPrc": rsp(1000141, "Invalid user id and password.")}
    assert answers == [bad, bad]
    assert checks == [1, 1]


# -- 1000107 / 1000135 / 1000141 / 1000144 -------------------------------------------------------


def test_wrong_subscriber(connect: Any) -> None:
    """1000107 for another existing subscriber, 1000135 for one that does not exist."""
    a, b = connect(), connect()
    a.must_token(1)
    body = {**a.save_body("FIN", "Finance"), "subsID": b.user.subs_id}
    assert a.post(SAVE, body)["rspPrc"] == rsp(
        1000107,
        f"User must be logged in on subscriber {b.user.subs_id}.",
        (b.user.subs_id, "subsID"),
    )
    ghost = uid("9")
    body["subsID"] = ghost
    assert a.post(SAVE, body)["rspPrc"] == rsp(
        1000135, f"Subscriber {ghost} does not exist.", (ghost, "subsID")
    )
    assert a.save("FIN", "Finance")["rspPrc"] == OK  # the refused calls left the token


def test_invalid_user_or_password(client: httpx.Client, new_user: Any) -> None:
    """Wrong password and unknown user answer the same 1000141 and open no session."""
    user = new_user()
    for body in (
        {"userID": user.email, "userPW": "wrong"},
        {"userID": f"{uid()}@example.com", "userPW": "whatever"},
    ):
        r = client.post(LOGIN, json={**body, "timeOffSet": -180})
        assert r.status_code == 200
        assert r.json() == {**BLANK_LOGIN, "rspPrc": rsp(1000141, "Invalid user id and password.")}


@pytest.mark.parametrize("field", ["sessID", "userID", "intGID"])
@pytest.mark.parametrize("value", ["", "3945C170-0799-4241-82CC-A7DF00B32A35"])
def test_session_does_not_exist(iko: Iko, field: str, value: str) -> None:
    """1000144 when the session id, its user or its intGID does not match a live session."""
    body = {**iko.session(), field: value}
    body["pgProcTkn"] = {"procID": 1, "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}}
    assert token_rsp(iko.post(TOKEN, body)) == rsp(1000144, "User session does not exist.")


# -- writegate's own numbers ------------------------------------------------------------------


def test_malformed_json(client: httpx.Client) -> None:
    """Broken JSON answers 9000001 with the parser's reason, in the path's shape."""
    r = client.post(SAVE, content=b'{"cmdStat": 0,', headers={"content-type": "application/json"})
    assert r.status_code == 200
    body = r.json()
    prc = body.pop("rspPrc")
    assert body == BLANK_SAVE
    assert prc["rspID"] == 9000001
    [param] = prc["rspChr"]
    assert param["pid"] == "1"
    assert param["pValue"]
    assert prc["rspMsg"] == f"The request is not valid JSON: {param['pValue']}"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"f004": "abc"}, "saveData.f004", "Input should be a valid integer"),
        ({"f004": 1.5}, "saveData.f004", "Input should be a valid integer"),
        ({"f003": 123}, "saveData.f003", "Input should be a valid string"),
        ({"l001": 7}, "saveData.l001", "Input should be a valid string"),
    ],
)
def test_wrong_types(iko: Iko, change: dict[str, Any], field: str, reason: str) -> None:
    """A wrong JSON type is named by its path, and nothing is saved."""
    iko.must_token(1)
    assert iko.save("FIN", "Finance", **change) == {
        **BLANK_SAVE,
        "rspPrc": rsp(9000002, f"{field} is invalid: {reason}", (field, field), (reason, "")),
    }
    assert iko.save("FIN", "Finance")["rspPrc"] == OK


def test_missing_field_and_non_object_body(iko: Iko) -> None:
    """A missing cmdStat and a body that is not an object."""
    body = iko.save_body()
    del body["cmdStat"]
    assert iko.post(SAVE, body)["rspPrc"] == rsp(
        9000002,
        "cmdStat is invalid: Field required",
        ("cmdStat", "cmdStat"),
        ("Field required", ""),
    )
    assert iko.post(SAVE, [1, 2])["rspPrc"] == rsp(
        9000002,
        "request body is invalid: must be a JSON object",
        ("request body", ""),
        ("must be a JSON object", ""),
    )


def test_value_checks(iko: Iko) -> None:
    """Too long, out of range and unknown cmdStat."""
    iko.must_token(1)
    assert iko.save("X" * 21, "Finance")["rspPrc"] == rsp(
        9000003, "Code is longer than 20 characters.", ("Code", "f001"), ("20", "")
    )
    assert iko.save("FIN", "Finance", f004=-1)["rspPrc"] == rsp(
        9000012,
        "Expense Type must be between 0 and 2147483647.",
        ("Expense Type", "f004"),
        ("0", ""),
        ("2147483647", ""),
    )
    assert iko.save("FIN", "Finance", cmd=2)["rspPrc"] == rsp(
        9000013, "Invalid record command type 2.", ("2", "cmdStat")
    )
    body = {**iko.save_body(), "timeOffSet": 5000}
    assert iko.post(SAVE, body)["rspPrc"] == rsp(
        9000012,
        "timeOffSet must be between -1440 and 1440.",
        ("timeOffSet", "timeOffSet"),
        ("-1440", ""),
        ("1440", ""),
    )
    assert iko.save("FIN", "Finance", f003=None)["rspPrc"] == OK  # .NET's null string is blank


def test_an_integer_outside_its_int32_is_invalid_before_its_range(iko: Iko) -> None:
    """2**31 does not fit the .NET Int32 of f004, cmdStat or timeOffSet: 9000002 names the
    field, as for any value of the wrong type; no token is spent."""
    iko.must_token(1)
    limit = "Input should be less than or equal to 2147483647"
    for field, body in (
        ("saveData.f004", iko.save_body(f004=2**31)),
        ("cmdStat", {**iko.save_body(), "cmdStat": 2**31}),
        ("timeOffSet", {**iko.save_body(), "timeOffSet": 2**31}),
    ):
        assert iko.post(SAVE, body)["rspPrc"] == rsp(
            9000002, f"{field} is invalid: {limit}", (field, field), (limit, "")
        )
    assert iko.save("FIN", "Finance")["rspPrc"] == OK


def test_vendor_template_spelling_pg_prog_tkn(iko: Iko) -> None:
    """The vendor's request template writes pgProgTkn; it is accepted as pgProcTkn."""
    body = {**iko.session(), "pgProgTkn": {"procID": 1, "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}}}
    assert token_rsp(iko.post(TOKEN, body)) == OK
    assert iko.save()["rspPrc"] == OK


def test_regression_json_lookalike_content_type_was_read_as_json(iko: Iko) -> None:
    """application/jsonx is not JSON: a token request that would succeed gets 9000004."""
    body = {**iko.session(), "pgProcTkn": {"procID": 1, "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}}}
    headers = {"content-type": "application/jsonx"}
    r = iko.http.post(TOKEN, content=json.dumps(body), headers=headers)
    assert (r.status_code, r.json()["rspPrc"]) == (
        200,
        rsp(
            9000004,
            "The request must be sent as application/json, not application/jsonx.",
            ("application/jsonx", ""),
        ),
    )


def test_regression_a_utf16_body_was_read_as_json(iko: Iko) -> None:
    """A token request that would succeed, in UTF-16: malformed (9000001), no token."""
    body = {**iko.session(), "pgProcTkn": {"procID": 1, "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}}}
    headers = {"content-type": "application/json"}
    r = iko.http.post(TOKEN, content=json.dumps(body).encode("utf-16"), headers=headers)
    assert r.status_code == 200
    prc = r.json()["rspPrc"]
    assert prc["rspID"] == 9000001
    assert "not UTF-8" in json.dumps(prc)


def test_regression_a_body_with_no_content_type_was_not_a_json_object(iko: Iko) -> None:
    """A token request that would succeed, sent with no Content-Type: 9000004."""
    body = {**iko.session(), "pgProcTkn": {"procID": 1, "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}}}
    r = iko.http.post(TOKEN, content=json.dumps(body))
    assert (r.status_code, r.json()["rspPrc"]) == (
        200,
        rsp(9000004, "The request must be sent as application/json, not none.", ("none", "")),
    )


def test_unknown_path_method_content_type_and_size(client: httpx.Client) -> None:
    """Unknown API, GET, a non-JSON content type and an oversized body, all HTTP 200."""
    path = "/bcss_wbcl_wa_ss/api/ss_02_ss99_sav"
    r = client.post(path, json={})
    assert (r.status_code, r.json()) == (
        200,
        {"rspPrc": rsp(9000006, f"Unknown API {path}.", (path, ""))},
    )
    r = client.get(SAVE)
    assert (r.status_code, r.json()) == (
        200,
        {**BLANK_SAVE, "rspPrc": rsp(9000007, "Method GET is not allowed; use POST.", ("GET", ""))},
    )
    r = client.post(LOGIN, content=b"userID=x", headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()["rspPrc"]) == (
        200,
        rsp(
            9000004,
            "The request must be sent as application/json, not text/plain.",
            ("text/plain", ""),
        ),
    )
    r = client.post(READ, json={"parCode": ["X" * 70_000]})
    assert r.status_code == 200
    assert r.json()["rspPrc"] == rsp(
        9000005, "The request is larger than 65536 bytes.", ("65536", "")
    )


def test_database_unavailable(tmp_path: Any) -> None:
    """With the database down every call still answers the envelope: 9000008."""
    if backend() == "postgresql":
        url = "postgresql://postgres@127.0.0.1:1/writegate_down"
    else:
        url = f"sqlite:///{tmp_path}/no-such-dir/down.db"
    down = start_server(url, auto_migrate=False, embedded_worker=False)
    try:
        with down.client() as c:
            r = c.post(LOGIN, json={"userID": "a@example.com", "userPW": "pw"})
            assert r.status_code == 200
            assert r.json() == {
                **BLANK_LOGIN,
                "rspPrc": rsp(9000008, "The service is temporarily unavailable; retry later."),
            }
            r = c.post(TOKEN, json={"sessID": "X", "pgProcTkn": {"procID": 1}})
            assert token_rsp(r.json())["rspID"] == 9000008
    finally:
        down.stop()


def test_revoked_user_session_ends(iko: Iko, server: Any) -> None:
    """Revoking the principal ends its sessions at once."""
    iko.must_token(1)
    with server.services.db.write() as s:
        assert server.services.auth.revoke(s, iko.user.email)
    assert iko.save()["rspPrc"] == rsp(1000144, "User session does not exist.")


def test_provisioned_attributes_reach_login(client: httpx.Client, new_user: Any) -> None:
    """user_name and int_gid attributes are answered by login."""
    user: User = new_user(
        attrs={"user_name": "Ana API", "int_gid": "4350aabe-9008-4e5f-9121-8471dd6868c6"}
    )
    iko = Iko(client, user)
    answer = iko.login()
    assert (answer["userName"], answer["intGID"]) == (
        "Ana API",
        "4350AABE-9008-4E5F-9121-8471DD6868C6",
    )
