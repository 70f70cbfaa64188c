"""Characters no database can store, and JSON types that are not the field's: 9000002."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.ikonomikal.conftest import (
    DELETE,
    LOGIN,
    OK,
    PASSWORD,
    READ,
    SAVE,
    TOKEN,
    USER_ROLES,
    Iko,
    User,
    rsp,
)
from tests.harness import Server, uid

SURROGATE = "a\ud800b"
SURROGATE_REASON = "must be Unicode text: a lone surrogate (U+D800 to U+DFFF) is not a character"
NUL_REASON = "must not contain NUL (U+0000) characters"


@pytest.fixture(scope="module")
def one(server: Server) -> Iterator[Iko]:
    """One logged-in user for the whole file (each login costs an argon2 hash)."""
    user = User(email=f"{uid('hostile')}@example.com", subs_id=uid("2"))
    with server.services.db.write() as s:
        server.services.auth.create(
            s, name=user.email, tenant=user.subs_id, roles=list(USER_ROLES), password=PASSWORD
        )
    with server.client() as c:
        iko = Iko(c, user)
        iko.login()
        yield iko


def post_raw(c: httpx.Client, path: str, body: Any) -> dict[str, Any]:
    """POST with the surrogate as the JSON escape "\\ud800", as a client would send it."""
    r = c.post(
        path,
        content=json.dumps(body, ensure_ascii=True).encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def invalid(field: str, reason: str) -> dict[str, Any]:
    """The rspPrc of 9000002 about one field."""
    return rsp(9000002, f"{field} is invalid: {reason}", (field, field), (reason, ""))


def _set(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    node = body
    *parents, last = field.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    return body


SESSION = ["portalID", "subsID", "intGID", "userID", "sessID"]
PROGRAM = ["prgInf.pMODL", "prgInf.pPRGM", "prgInf.pPRGDSC"]
SAVE_DATA = [f"saveData.{f}" for f in ("f001", "f002", "f003", "l001", "l002", "l003", "l004")]
CASES = [
    *((LOGIN, f) for f in ("userID", "userPW", "userCap", "sessCap")),
    *((TOKEN, f) for f in SESSION),
    *((TOKEN, f"pgProcTkn.{f}") for f in PROGRAM),
    *((SAVE, f) for f in [*SESSION, *PROGRAM, *SAVE_DATA]),
    *((READ, f) for f in [*SESSION, *PROGRAM]),
    *((DELETE, f) for f in [*SESSION, *PROGRAM]),
]


def _body(iko: Iko, path: str) -> dict[str, Any]:
    if path == LOGIN:
        return {"userID": iko.user.email, "userPW": iko.user.password}
    if path == TOKEN:
        return {"pgProcTkn": {"procID": 1, "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}}}
    if path == SAVE:
        return iko.save_body("HOST", "Hostile")
    return {**iko.session(), "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}, "parCode": ["HOST"]}


@pytest.mark.parametrize(
    ("path", "field"), CASES, ids=[f"{p.rsplit('/', 1)[1]}-{f}" for p, f in CASES]
)
def test_lone_surrogate_in_any_string_field(one: Iko, path: str, field: str) -> None:
    """A lone surrogate in any string of the five calls, on a live session: 9000002 naming
    the field (not 9000009 and a dropped connection); nothing saved, the token kept."""
    one.must_token(1)
    body = _body(one, path)
    if path not in (LOGIN,):
        body = {**one.session(), **body}
    answer = post_raw(one.http, path, _set(body, field, SURROGATE))
    prc = answer["rspPrc"]
    assert prc == invalid(field, SURROGATE_REASON), answer
    assert one.save("", "Token kept")["rspPrc"] == OK


def test_surrogates_in_read_and_delete_codes(one: Iko) -> None:
    """parCode entries are refused the same way."""
    for path in (READ, DELETE):
        body = {**_body(one, path), "parCode": ["OK", SURROGATE]}
        assert post_raw(one.http, path, body)["rspPrc"] == invalid("parCode.1", SURROGATE_REASON)


@pytest.mark.parametrize("field", ["userID", "userCap"])
def test_nul_in_login_fields_is_a_field_error(client: httpx.Client, field: str) -> None:
    """A NUL in userID was 'request body must be a JSON object' on PostgreSQL: now it is
    a field error on both databases."""
    body = {"userID": "someone@example.com", "userPW": "pw", field: "a\x00b"}
    assert post_raw(client, LOGIN, body)["rspPrc"] == invalid(field, NUL_REASON)


def test_nul_in_a_record_field(one: Iko) -> None:
    """A NUL in saved text is refused at the door, not by the database."""
    one.must_token(1)
    assert one.save("FIN", "Fin\x00ance")["rspPrc"] == invalid("saveData.f002", NUL_REASON)
    assert one.save("FIN", "Finance")["rspPrc"] == OK


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        (LOGIN, "timeOffSet", True),
        (LOGIN, "timeOffSet", "-180"),
        (TOKEN, "portID", False),
        (TOKEN, "pgProcTkn.procID", True),
        (TOKEN, "pgProcTkn.procID", "1"),
        (SAVE, "cmdStat", False),
        (SAVE, "saveData.f004", True),
        (READ, "rowStart", True),
        (READ, "rowCount", "5"),
    ],
)
def test_numbers_are_json_integers(one: Iko, path: str, field: str, value: Any) -> None:
    """true is not 1 and "5" is not 5: every integer field takes JSON integers only."""
    body = _body(one, path)
    if path != LOGIN:
        body = {**one.session(), **body}
    answer = post_raw(one.http, path, _set(body, field, value))
    assert answer["rspPrc"] == invalid(field, "Input should be a valid integer"), answer
