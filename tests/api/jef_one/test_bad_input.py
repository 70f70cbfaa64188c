"""Every kind of bad input gets HTTP 400 in jef-one's envelope, and never a job."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.harness import Server
from writegate.core.jobs import JobRow

GOOD = {
    "entity_number": "1001",
    "employee_number": "00001",
    "session_id": "bad-input-never-stored",
    "app_type": "mobile",
    "app_number": "001",
}
URL = "/one-post-create-session-job"
CONTENT_TYPE_REFUSAL = ("invalid_content_type", "UNSUPPORTED_CONTENT_TYPE")


def _job_count(server: Server) -> int:
    with server.services.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(JobRow)) or 0)


def _refused(r: httpx.Response, error_type: str, error_code: str) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["is_accepted"] is False
    assert body["error_type"] == error_type
    assert body["error_code"] == error_code
    assert body["job_id"] is None
    assert isinstance(body["error"], str)
    assert body["error"]
    # Every refusal names the path's method, validation errors included.
    path = r.request.url.path
    assert body["allowed_method"] == ("POST" if path.startswith("/one-") else "GET")
    if error_code == "MALFORMED_JSON":  # however it is malformed, the body's problem is listed
        assert [e["code"] for e in body["errors"]] == ["MALFORMED_JSON"]
    return dict(body)


def _with(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not ...}


FIELD_CASES = [
    ("entity_number", _with(entity_number="101"), "INVALID_FORMAT"),
    ("entity_number", _with(entity_number="10011"), "INVALID_FORMAT"),
    ("entity_number", _with(entity_number="10a1"), "INVALID_FORMAT"),
    ("entity_number", _with(entity_number=1001), "INVALID_TYPE"),
    ("entity_number", _with(entity_number=...), "MISSING_FIELD"),
    ("employee_number", _with(employee_number="0001"), "INVALID_FORMAT"),
    ("employee_number", _with(employee_number="000001"), "INVALID_FORMAT"),
    ("employee_number", _with(employee_number=None), "INVALID_TYPE"),
    ("session_id", _with(session_id=""), "INVALID_LENGTH"),
    ("session_id", _with(session_id="x" * 129), "INVALID_LENGTH"),
    ("session_id", _with(session_id="a b"), "INVALID_FORMAT"),
    ("session_id", _with(session_id="'; DROP TABLE jobs; --"), "INVALID_FORMAT"),
    ("session_id", _with(session_id=["s"]), "INVALID_TYPE"),
    ("app_type", _with(app_type="tablet"), "INVALID_VALUE"),
    ("app_type", _with(app_type="Mobile"), "INVALID_VALUE"),
    ("app_type", _with(app_type=...), "MISSING_FIELD"),
    ("app_number", _with(app_number="01"), "INVALID_FORMAT"),
    ("app_number", _with(app_number=1), "INVALID_TYPE"),
    ("surprise", _with(surprise="x"), "UNKNOWN_FIELD"),
]


@pytest.mark.parametrize(("field", "payload", "code"), FIELD_CASES)
def test_field_errors(
    client: httpx.Client, server: Server, field: str, payload: dict[str, Any], code: str
) -> None:
    """Each invalid field is named, with its own code and a message saying what is expected."""
    before = _job_count(server)
    body = _refused(client.post(URL, json=payload), "validation_error", code)
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["code"] == code
    assert field in body["errors"][0]["message"]
    assert _job_count(server) == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/one-entities-post-one", {"entity_number": "1001", "entity_name": "   "}, "entity_name"),
        (
            "/one-employees-post-one",
            {"entity_number": "1001", "employee_number": "00001", "employee_name": "\t\n"},
            "employee_name",
        ),
    ],
)
def test_regression_a_blank_name_was_accepted(
    client: httpx.Client, server: Server, path: str, body: dict[str, Any], field: str
) -> None:
    """A name of white space alone was accepted and stored as the record's name."""
    before = _job_count(server)
    answer = _refused(client.post(path, json=body), "validation_error", "INVALID_FORMAT")
    assert answer["errors"][0]["field"] == field
    assert "not all white space" in answer["errors"][0]["message"]
    assert _job_count(server) == before


def test_every_problem_is_listed(client: httpx.Client) -> None:
    """Several bad fields give one error entry each."""
    payload = {"entity_number": 1, "app_type": "tv", "extra": True}
    body = _refused(client.post(URL, json=payload), "validation_error", "INVALID_TYPE")
    by_field = {e["field"]: e["code"] for e in body["errors"]}
    assert by_field == {
        "entity_number": "INVALID_TYPE",
        "employee_number": "MISSING_FIELD",
        "session_id": "MISSING_FIELD",
        "app_type": "INVALID_VALUE",
        "app_number": "MISSING_FIELD",
        "extra": "UNKNOWN_FIELD",
    }


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"entity_number": "1001",}', b"\xff\xfe{}", b"null", b"[]", b'"text"'],
)
def test_malformed_or_non_object_bodies(client: httpx.Client, server: Server, raw: bytes) -> None:
    """Malformed JSON, invalid UTF-8 and non-object bodies are refused without a job."""
    before = _job_count(server)
    r = client.post(URL, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    body = r.json()
    assert body["is_accepted"] is False
    assert body["error_code"] in ("MALFORMED_JSON", "INVALID_BODY", "MISSING_FIELD")
    if raw in (b"{", b'{"entity_number": "1001",}', b"\xff\xfe{}"):
        _refused(r, "invalid_json", "MALFORMED_JSON")
    if raw in (b"[]", b'"text"', b"null"):
        assert body["error_code"] == "INVALID_BODY"
    assert _job_count(server) == before


def test_deeply_nested_json(client: httpx.Client) -> None:
    """Nesting deep enough to break a recursive parser is a malformed body, not a 500."""
    raw = b"[" * 30_000 + b"]" * 30_000
    r = client.post(URL, content=raw, headers={"content-type": "application/json"})
    _refused(r, "invalid_json", "MALFORMED_JSON")
    huge = b'{"entity_number": 1' + b"0" * 5000 + b"}"  # past Python's int digits limit
    r = client.post(URL, content=huge, headers={"content-type": "application/json"})
    _refused(r, "invalid_json", "MALFORMED_JSON")


def test_oversized_body(client: httpx.Client, server: Server) -> None:
    """A body over the limit is refused before parsing, with a 400 in the envelope."""
    big = _with(session_id="x" * (server.settings.max_body_bytes + 10))
    body = _refused(client.post(URL, json=big), "payload_too_large", "PAYLOAD_TOO_LARGE")
    assert str(server.settings.max_body_bytes) in body["message"]


def test_oversized_chunked_body(client: httpx.Client, server: Server) -> None:
    """The limit also holds for a chunked body without Content-Length."""

    def chunks() -> Any:
        for _ in range(20):
            yield b" " * 8192

    r = client.post(URL, content=chunks(), headers={"content-type": "application/json"})
    _refused(r, "payload_too_large", "PAYLOAD_TOO_LARGE")


def test_wrong_content_type(client: httpx.Client) -> None:
    """A form or text body is refused with a content-type error."""
    r = client.post(URL, content=json.dumps(GOOD), headers={"content-type": "text/plain"})
    _refused(r, "invalid_content_type", "UNSUPPORTED_CONTENT_TYPE")
    r = client.post(URL, data={"entity_number": "1001"})
    _refused(r, "invalid_content_type", "UNSUPPORTED_CONTENT_TYPE")


@pytest.mark.parametrize("ctype", ["application/jsonx", "application/json-seq"])
def test_regression_json_lookalike_content_type_was_accepted_with_a_valid_body(
    client: httpx.Client, server: Server, ctype: str
) -> None:
    """A media type that only starts like application/json is not JSON: refused whatever the
    body (a valid one was accepted, an invalid one called not a JSON object)."""
    before = _job_count(server)
    r = client.post(URL, content=json.dumps(GOOD), headers={"content-type": ctype})
    _refused(r, "invalid_content_type", "UNSUPPORTED_CONTENT_TYPE")
    assert _job_count(server) == before


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-32", "utf-32-be"], ids=lambda e: str(e)
)
def test_regression_a_valid_body_in_utf16_or_utf32_was_accepted(
    client: httpx.Client, server: Server, encoding: str
) -> None:
    """JSON is UTF-8 (documented: not UTF-8 is MALFORMED_JSON); the bytes were read as UTF-16
    or UTF-32, by a byte-order mark or by their NULs, and the job queued."""
    before = _job_count(server)
    raw = json.dumps(GOOD).encode(encoding)
    r = client.post(URL, content=raw, headers={"content-type": "application/json"})
    body = _refused(r, "invalid_json", "MALFORMED_JSON")
    assert "not UTF-8" in body["error"]
    assert _job_count(server) == before


def test_a_utf8_byte_order_mark_is_ignored(client: httpx.Client) -> None:
    """RFC 8259 lets a parser ignore a UTF-8 byte-order mark: the body is still UTF-8."""
    raw = json.dumps({**GOOD, "session_id": "bom-utf8"}).encode("utf-8-sig")
    r = client.post(URL, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text


def test_regression_a_body_with_no_content_type_was_called_not_a_json_object(
    client: httpx.Client, server: Server
) -> None:
    """A valid body sent with no Content-Type is refused for its missing content type."""
    before = _job_count(server)
    body = _refused(client.post(URL, content=json.dumps(GOOD)), *CONTENT_TYPE_REFUSAL)
    assert "no content type" in body["message"]
    assert _job_count(server) == before


def test_unknown_route_and_method(client: httpx.Client) -> None:
    """An unknown jef-one path is 404 and a wrong method 405, both in the envelope."""
    r = client.get("/one-post-create-session-job")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert r.json()["allowed_method"] == "POST"
    r = client.post("/one-post-nothing", json={})
    assert r.status_code == 404
    assert r.json()["error_code"] == "ROUTE_NOT_FOUND"
    assert r.json()["is_accepted"] is False


def test_bad_query_on_gets(client: httpx.Client) -> None:
    """A GET without its key, or with a malformed one, is a 400 naming the parameter."""
    r = client.get("/jef-one-get-entity-by-entity-number", params={"entity_number": "12"})
    body = _refused(r, "validation_error", "INVALID_FORMAT")
    assert body["errors"][0]["field"] == "entity_number"
    r = client.get("/jef-one-get-session-by-session-id")
    body = _refused(r, "validation_error", "MISSING_FIELD")
    assert body["errors"][0]["field"] == "session_id"
