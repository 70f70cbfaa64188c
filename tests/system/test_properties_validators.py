"""Property-based tests (hypothesis) of each API's parsers and validators, over real HTTP.

Each property has an oracle written from the API's documentation, independent of the
module's code: a generated input is valid exactly when the documented rules say so, a
valid input is accepted (and stored as sent), an invalid one is refused in the envelope
and leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Server, uid
from tests.system.apis import REFUSAL, abs_client_code, new_principal, present_modules

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: JSON values that are not what a field expects, whatever it expects
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
#: characters no database can store: a lone surrogate (JSON "\ud800") is not Unicode text
UNSTORABLE = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\x00"])
#: text with one unstorable character somewhere in it
HOSTILE = st.builds(lambda a, bad, b: a + bad + b, TEXT, UNSTORABLE, TEXT)


def unstorable(value: Any) -> bool:
    """A string holding a lone surrogate or NUL."""
    return isinstance(value, str) and any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in value)


def post_json(c: httpx.Client, path: str, body: Any, **kw: Any) -> httpx.Response:
    """POST JSON with non-ASCII escaped, so a lone surrogate travels as "\ud800"."""
    headers = {**kw.pop("headers", {}), "content-type": "application/json"}
    content = json.dumps(body, ensure_ascii=True).encode()
    return c.post(path, content=content, headers=headers, **kw)


def needs(module: str) -> Any:
    """Skip when the module is not in this tree."""
    return pytest.mark.skipif(module not in present_modules(), reason=f"{module} not present")


# -- jef-one ---------------------------------------------------------------------------------

ENTITY = st.one_of(
    st.from_regex(r"\A[0-9]{4}\Z"),
    st.from_regex(r"\A[0-9]{1,6}\Z"),
    TEXT,
    st.integers(0, 99999),
    JUNK,
)
NAME = st.one_of(
    st.text(min_size=1, max_size=200),
    st.text(max_size=260),
    st.just(""),
    st.just("a\x00b"),
    JUNK,
)


@needs("jef_one")
@SETTINGS
@given(number=ENTITY, name=NAME, active=st.one_of(st.booleans(), JUNK), extra=st.booleans())
def test_jef_one_entity_validation_matches_the_documented_rules(
    server: Server, number: Any, name: Any, active: Any, extra: bool
) -> None:
    """entity_number: exactly 4 ASCII digits; entity_name: 1-200 characters, no NUL;
    is_active: a boolean; no other field. Valid -> 202 (or 409 while a job for it is
    active); invalid -> 400 naming exactly the offending fields."""
    body: dict[str, Any] = {"entity_number": number, "entity_name": name, "is_active": active}
    if extra:
        body["surprise"] = 1
    bad = set()
    if not (isinstance(number, str) and re.fullmatch(r"[0-9]{4}", number)):
        bad.add("entity_number")
    if not (isinstance(name, str) and 1 <= len(name) <= 200 and "\x00" not in name):
        bad.add("entity_name")
    if not isinstance(active, bool):
        bad.add("is_active")
    if extra:
        bad.add("surprise")
    with server.client() as c:
        r = c.post("/one-entities-post-one", json=body)
    if not bad:
        assert r.status_code in (202, 409), r.text
        assert r.json()["is_accepted"] is (r.status_code == 202)
        return
    assert r.status_code == 400, (body, r.text)
    assert REFUSAL["jef_one"](r)
    flagged = {e["field"] for e in r.json()["errors"]}
    assert flagged == bad, (body, r.json()["errors"])


# -- ABS -------------------------------------------------------------------------------------

DATES = st.one_of(
    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(lambda d: d.strftime("%Y-%m-%d")),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    st.just(""),
    TEXT,
    HOSTILE,
    JUNK,
    st.integers(),
)


def _real_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value == "":
        return True
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def abs_caller(server: Server) -> tuple[str, dict[str, str]]:
    """A registered ABS client code and its principal's headers."""
    code = abs_client_code(server)
    return code, {"x-api-key": new_principal(server, code, ["abs:write"])}


@needs("abs")
@SETTINGS
@given(
    date=DATES,
    version=st.one_of(st.integers(-5, 5), st.integers(2**63 - 2, 2**63 + 2), TEXT, JUNK),
    status=st.one_of(st.text(max_size=120), HOSTILE, JUNK),
)
def test_abs_put_db_validation_matches_the_documented_rules(
    server: Server, abs_caller: tuple[str, dict[str, str]], date: Any, version: Any, status: Any
) -> None:
    """processing_date: YYYY-MM-DD real date or ""; version: JSON integer 0..2^63-1;
    processing_status: string <= 100; null means not given; no string may hold a lone
    surrogate or NUL. A valid create stores what was sent."""
    code, headers = abs_caller
    body = {
        "client_code": code,
        "processing_date": date,
        "version": version,
        "processing_status": status,
    }
    # JSON null is "not given" (what .NET clients send for an unset field)
    valid = (
        (date is None or _real_date(date))
        and (version is None or (type(version) is int and 0 <= version <= 2**63 - 1))
        and (status is None or (isinstance(status, str) and len(status) <= 100))
        and not unstorable(status)
        and not unstorable(date)
    )
    with server.client() as c:
        r = post_json(c, "/model/package/putDb", body, headers=headers)
    assert r.status_code == 200, r.text
    data = r.json()
    if not valid:
        assert REFUSAL["abs"](r), (body, data)
        assert data["error"] in {"INVALID_DATE", "INVALID_FIELD", "FIELD_TOO_LONG"}, data
        return
    if version:  # a create carrying a version is an optimistic-concurrency check on nothing
        assert data["status"] == "ok" or data["error"] == "VERSION_CONFLICT", (body, data)
        if data["status"] != "ok":
            return
    assert data["status"] == "ok", (body, data)
    stored = data["data"]
    assert stored["processing_date"] == (date or "")
    if status and status.strip():
        assert stored["processing_status"] in (status, status.strip()), (status, stored)
    else:
        assert stored["processing_status"] == "NEW", stored


# -- Ikonomikal ------------------------------------------------------------------------------

IKO_LOGIN = "/bcss_wbcl_wa_sc/api/O1_getSCSessWBLogVer"
IKO_TOKEN = "/bcss_wbcl_wa_sc/api/O1_getSCPrgPrcCheckTkn"
IKO_SAVE = "/bcss_wbcl_wa_ss/api/ss_02_ss07_sav"


class IkoState:
    """One logged-in session and the NEW tokens it holds."""

    def __init__(self, client: httpx.Client, session: dict[str, Any]) -> None:
        self.c = client
        self.session = session
        self.tokens = 0

    def ensure_token(self) -> None:
        """Hold one NEW token (a refused save must have given its token back)."""
        if self.tokens == 0:
            body = {"pgProcTkn": {"procID": 1, "prgInf": {"pPRGM": "SS07"}}, **self.session}
            answer = self.c.post(IKO_TOKEN, json=body).json()
            assert answer["rspPrc"]["rspID"] == 0, answer
            self.tokens = 1


@pytest.fixture(scope="module")
def iko_state(server: Server) -> Any:
    """A user on a subscriber of its own, logged in once for the whole property run."""
    email, password = f"{uid('prop')}@example.com", "prop-" + uid()
    with server.services.db.write() as s:
        server.services.auth.create(
            s,
            name=email,
            tenant=uid("5"),
            roles=["ikonomikal", "ikonomikal:ss07"],
            password=password,
            attrs={"user_code": "P", "group": "G"},
        )
    with server.client() as c:
        login = c.post(IKO_LOGIN, json={"userID": email, "userPW": password}).json()
        assert login["rspPrc"]["rspID"] == 0, login
        yield IkoState(c, {k: login[k] for k in ("subsID", "intGID", "userID", "sessID")})


CODES = st.one_of(st.just(""), st.text(max_size=24), st.from_regex(r"\A[A-Z0-9]{1,20}\Z"), HOSTILE)
DESCRIPTIONS = st.one_of(st.text(max_size=210), st.just("   "), st.just(""), HOSTILE)
AMOUNTS = st.one_of(st.integers(-3, 3), st.integers(2**31 - 2, 2**31 + 1), JUNK, TEXT)


@needs("ikonomikal")
@SETTINGS
@given(f001=CODES, f002=DESCRIPTIONS, f004=AMOUNTS)
def test_ikonomikal_save_validation_and_token_give_back(
    iko_state: IkoState, f001: str, f002: str, f004: Any
) -> None:
    """f001 <= 20 printable characters after trimming (blank: auto code); f002 required,
    <= 200 after trimming; f004 an integer 0..2^31-1; no lone surrogate or NUL anywhere.
    A refused save keeps its token."""
    iko_state.ensure_token()
    code, text = f001.strip(), f002.strip()
    valid = (
        len(code) <= 20
        and code.isprintable()
        and 1 <= len(text) <= 200
        and type(f004) is int
        and 0 <= f004 <= 2**31 - 1
        and not unstorable(f001)
        and not unstorable(f002)
    )
    body = {
        "prgInf": {"pPRGM": "SS07"},
        "saveData": {"f001": f001, "f002": f002, "f004": f004},
        "cmdStat": 0,
        **iko_state.session,
    }
    r = post_json(iko_state.c, IKO_SAVE, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    number = answer["rspPrc"]["rspID"]
    if not valid or number == 1000092:  # invalid, or a code generated twice: refused
        assert number not in (0, 9000009), (body, answer)  # refused, and clearly
        assert number != 1000105, "a refused save must give its NEW token back"
        if unstorable(f001) or unstorable(f002):
            assert number == 9000002, answer
        assert answer["parCode"] == []
        return
    assert number == 0, (body, answer)
    iko_state.tokens -= 1
    if code:
        assert answer["parCode"] == [code]
    else:
        assert re.fullmatch(r"[0-9]{6}", answer["parCode"][0])


@needs("ikonomikal")
@SETTINGS
@given(
    field=st.sampled_from(["f001", "f002", "f003", "l001", "l002", "l003", "l004"]),
    value=HOSTILE,
)
def test_ikonomikal_refuses_unstorable_text_in_any_record_field(
    iko_state: IkoState, field: str, value: str
) -> None:
    """A lone surrogate or NUL anywhere in any text of an otherwise valid save: 9000002
    naming that field, nothing saved, the token kept."""
    iko_state.ensure_token()
    data = {"f001": "", "f002": "Valid", field: value}
    body = {"prgInf": {"pPRGM": "SS07"}, "saveData": data, "cmdStat": 0, **iko_state.session}
    answer = post_json(iko_state.c, IKO_SAVE, body).json()
    assert answer["rspPrc"]["rspID"] == 9000002, answer
    assert answer["rspPrc"]["rspChr"][0]["plbl"] == f"saveData.{field}", answer
    assert answer["parCode"] == []


# -- BokaMera --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def boka_company(server: Server) -> tuple[str, dict[str, str]]:
    """A company (GUID tenant) with a read-role principal."""
    company = str(uuid.uuid4())
    key = new_principal(server, company, ["bookingsupplier-administrator-read"])
    return company, {"x-api-key": key}


def _company_case(own: str) -> Any:
    return st.one_of(
        st.just(own),
        st.just(own.upper()),
        st.just(""),
        st.just("00000000-0000-0000-0000-000000000000"),
        st.uuids().map(str),
        TEXT.filter(lambda t: not _parses_as_uuid(t)),
    )


def _parses_as_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@needs("bokamera")
@SETTINGS
@given(data=st.data(), skip=st.integers(-3, 2**31 + 3), take=st.integers(-2, 1003))
def test_bokamera_query_parsing_matches_the_documented_rules(
    server: Server, boka_company: tuple[str, dict[str, str]], data: Any, skip: int, take: int
) -> None:
    """CompanyId: own id, empty or Guid.Empty -> own company; another GUID -> 403; not a GUID
    -> 400. Skip >= 0 (bounded), Take 1..1000, else 400."""
    company, headers = boka_company
    company_id = data.draw(_company_case(company))
    with server.client() as c:
        r = c.get(
            "/codelock/axema/usersync",
            params={"CompanyId": company_id, "Skip": skip, "Take": take},
            headers=headers,
        )
    own = company_id.strip() in ("", "00000000-0000-0000-0000-000000000000") or (
        _parses_as_uuid(company_id) and uuid.UUID(company_id) == uuid.UUID(company)
    )
    bad_guid = company_id.strip() != "" and not _parses_as_uuid(company_id)
    bad_paging = not (0 <= skip <= 2**31 - 1) or not (1 <= take <= 1000)
    if bad_guid or bad_paging:
        assert r.status_code == 400, (company_id, skip, take, r.text)
        assert REFUSAL["bokamera"](r)
    elif own:
        assert r.status_code == 200, (company_id, r.text)
        assert r.json()["Results"] == []
    else:
        assert r.status_code == 403, (company_id, r.text)
        assert REFUSAL["bokamera"](r)
