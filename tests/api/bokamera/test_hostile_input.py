"""Hostile bodies and parameters get specific ServiceStack errors, never Python's own words."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.bokamera.conftest import SETTINGS, SYNC, wait_done

#: phrases of Python's exceptions that must never reach a client
INTERNALS = ("sys.set_int_max_str_digits", "recursion", "Traceback", "Exceeds the limit")


def _refused(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    err = r.json()["ResponseStatus"]
    assert err["ErrorCode"] == code, err
    text = r.text
    for phrase in INTERNALS:
        assert phrase not in text, text
    message: str = err["Message"]
    return message


@pytest.mark.parametrize("path", [SYNC, SETTINGS])
def test_huge_integer_in_body(client: httpx.Client, company: Any, path: str) -> None:
    """A 5,000-digit number: 400 naming the field and the limit, nothing about sys."""
    co = company(None)
    h = {**co.headers, "content-type": "application/json"}
    body = b'{"ApiEndpoint": "http://127.0.0.1", "ApiPort": ' + b"9" * 5000 + b"}"
    message = _refused(client.post(path, content=body, headers=h), 400, "SerializationException")
    assert "5000 digits" in message
    assert client.get(SETTINGS, headers=co.headers).status_code == 404
    assert client.get(SYNC, headers=co.headers).json()["Total"] == 0


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_body(client: httpx.Client, company: Any, opener: bytes) -> None:
    """JSON nested 10,000 deep: 400 saying it is nested too deeply, nothing about recursion."""
    co = company(None)
    h = {**co.headers, "content-type": "application/json"}
    closer = b"]" if opener == b"[" else b"}"
    body = b'{"CompanyId": ' + opener * 10_000 + b"1" + closer * 10_000 + b"}"
    message = _refused(client.post(SYNC, content=body, headers=h), 400, "SerializationException")
    assert "nested" in message
    jsonl = {**co.headers, "content-type": "text/jsonl"}
    message = _refused(
        client.post(SYNC, content=body, headers=jsonl), 400, "SerializationException"
    )
    assert "nested" in message
    assert client.get(SYNC, headers=co.headers).json()["Total"] == 0


def test_huge_integers_in_query_and_form(client: httpx.Client, company: Any) -> None:
    """Skip/Take/ApiPort with thousands of digits in the query or a form: a field error."""
    co = company(None)
    for params in ({"Skip": "9" * 5000}, {"Take": "9" * 5000}):
        r = client.get(SYNC, params=params, headers=co.headers)
        message = _refused(r, 400, "InvalidInteger")
        assert message.startswith(f"{next(iter(params))}: "), message
    form = {
        "ApiEndpoint": "http://127.0.0.1",
        "Username": "u",
        "Password": "p",
        "ApiPort": "9" * 5000,
    }
    r = client.post(SETTINGS, data=form, headers=co.headers)
    assert r.status_code == 400, r.text
    assert r.json()["ResponseStatus"]["Errors"][0]["FieldName"] == "ApiPort"
    for phrase in INTERNALS:
        assert phrase not in r.text


def test_a_body_with_a_byte_order_mark_is_read(
    client: httpx.Client, vaka: Any, company: Any
) -> None:
    """A UTF-8 BOM before the JSON (as some .NET writers send) is skipped, not a 400."""
    co = company(vaka(1))
    for ctype in ("application/json", "text/jsonl"):
        h = {**co.headers, "content-type": ctype}
        body = b"\xef\xbb\xbf" + f'{{"CompanyId": "{co.id}"}}'.encode()
        r = client.post(SYNC, content=body, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["CompanyId"] == co.id
        wait_done(client, co, r.json()["Id"])


@pytest.mark.parametrize("field", ["Email", "VakaUserId"])
def test_regression_a_nul_in_a_customer_filter_differed_by_database(
    client: httpx.Client, company: Any, field: str
) -> None:
    """A NUL in a filter was a 400 naming no field on PostgreSQL (its text cannot hold one)
    and an empty page on SQLite: both refuse it as that field's error."""
    co = company(None)
    r = client.get("/customers", params={field: "a\x00b"}, headers=co.headers)
    assert r.status_code == 400, r.text
    status = r.json()["ResponseStatus"]
    assert [e["FieldName"] for e in status["Errors"]] == [field]
    assert "NUL" in status["Errors"][0]["Message"]
