"""Every ABS error code, in the ABS envelope, with nothing written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.abs.conftest import (
    DATA_TYPE,
    Client,
    assert_error,
    assert_ok,
    call,
    new_client,
    version_counter,
)
from tests.harness import Server, start_server, uid
from writegate.modules.abs import service
from writegate.modules.abs.errors import CODES


@pytest.fixture
def package(client: httpx.Client, abs_client: Client) -> dict[str, Any]:
    """One freshly created package of abs_client."""
    data: dict[str, Any] = assert_ok(
        call(client, "putDb", {"client_code": abs_client.code}, abs_client.headers)
    )
    return data


def _unchanged(client: httpx.Client, owner: Client, before: dict[str, Any]) -> None:
    now = assert_ok(
        call(client, "get", {"client_code": owner.code, "uid": before["uid"]}, owner.headers)
    )
    assert now == before


def _raw(
    client: httpx.Client, path: str, content: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    response = client.post(path, content=content, headers=headers)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


# -- authentication and tenants ------------------------------------------------------------


def test_auth_required(client: httpx.Client, abs_client: Client, server: Server) -> None:
    """No API key at all."""
    before = version_counter(server)
    assert_error(call(client, "putDb", {"client_code": abs_client.code}, {}), "AUTH_REQUIRED")
    assert_error(call(client, "getList", {"client_code": abs_client.code}, {}), "AUTH_REQUIRED")
    # authentication is checked before the fields, so strangers learn nothing about them
    assert_error(call(client, "putDb", {"id": "x", "colour": 1}, {}), "AUTH_REQUIRED")
    assert version_counter(server) == before


@pytest.mark.parametrize(
    "headers",
    [{"x-api-key": "wg_not-a-key"}, {"Authorization": "Bearer wg_not-a-key"}],
)
def test_invalid_api_key(client: httpx.Client, abs_client: Client, headers: dict[str, str]) -> None:
    """An unknown key, in either header."""
    answer = call(client, "putDb", {"client_code": abs_client.code}, headers)
    assert_error(answer, "INVALID_API_KEY")


def test_revoked_key(client: httpx.Client, abs_client: Client, server: Server) -> None:
    """A revoked key stops working at once."""
    with server.services.db.write() as s:
        assert server.services.auth.revoke(s, abs_client.user)
    answer = call(client, "getList", {"client_code": abs_client.code}, abs_client.headers)
    assert_error(answer, "INVALID_API_KEY")


def test_client_access_denied(
    client: httpx.Client, server: Server, make_principal: Any, package: dict[str, Any]
) -> None:
    """Another tenant's principal cannot read or write this client's packages."""
    other = new_client(server, make_principal)
    owner_code = package["client_code"]
    for method, body in [
        ("putDb", {"client_code": owner_code}),
        ("putDb", {"client_code": owner_code, "uid": package["uid"], "processing_step": "X"}),
        ("get", {"client_code": owner_code, "uid": package["uid"]}),
        ("getList", {"client_code": owner_code}),
        ("getChanges", {"client_code": owner_code}),
        ("delete", {"client_code": owner_code, "uid": package["uid"]}),
    ]:
        assert_error(call(client, method, body, other.headers), "CLIENT_ACCESS_DENIED")
    # an unregistered code gets the same answer, so codes cannot be probed
    probe = call(client, "getList", {"client_code": uid("NOPE")}, other.headers)
    assert_error(probe, "CLIENT_ACCESS_DENIED")


def test_unknown_client_code(client: httpx.Client, make_principal: Any) -> None:
    """A tenant whose client code was never registered, and a superadmin naming an unknown code."""
    unregistered, key = make_principal(tenant=uid("UNREG"), roles=["abs:write"])
    own = call(client, "putDb", {"client_code": unregistered.tenant}, {"x-api-key": key})
    assert "not registered" in assert_error(own, "UNKNOWN_CLIENT_CODE")
    _, admin_key = make_principal(roles=["superadmin"])
    answer = call(client, "getList", {"client_code": uid("GHOST")}, {"x-api-key": admin_key})
    assert_error(answer, "UNKNOWN_CLIENT_CODE")


def test_superadmin_reaches_every_client(
    client: httpx.Client, make_principal: Any, package: dict[str, Any]
) -> None:
    """The explicit all-tenants role may read and write any registered client."""
    admin, admin_key = make_principal(roles=["superadmin"])
    h = {"x-api-key": admin_key}
    updated = assert_ok(
        call(
            client,
            "putDb",
            {"client_code": package["client_code"], "uid": package["uid"], "processing_step": "A"},
            h,
        )
    )
    assert updated["modify_user"] == admin.name
    assert updated["create_user"] == package["create_user"]


# -- body-level errors ---------------------------------------------------------------------


def test_malformed_json(client: httpx.Client, abs_client: Client, server: Server) -> None:
    """Broken JSON and non-UTF-8 bytes."""
    before = version_counter(server)
    h = {**abs_client.headers, "content-type": "application/json"}
    for content in [b'{"client_code": ', b"\xff\xfe{}", b"{'client_code': 'x'}"]:
        answer = _raw(client, "/model/package/putDb", content, h)
        assert_error(answer, "MALFORMED_JSON")
    assert version_counter(server) == before


def test_unsupported_content_type(client: httpx.Client, abs_client: Client) -> None:
    """A JSON text sent as text/plain."""
    body = json.dumps({"client_code": abs_client.code}).encode()
    h = {**abs_client.headers, "content-type": "text/plain"}
    assert_error(_raw(client, "/model/package/putDb", body, h), "UNSUPPORTED_CONTENT_TYPE")


def test_regression_json_lookalike_content_type_was_read_as_json(
    client: httpx.Client, abs_client: Client
) -> None:
    """application/jsonx is not JSON, even with a body the method would take."""
    body = json.dumps({"client_code": abs_client.code, "uid": "nothing-here"}).encode()
    h = {**abs_client.headers, "content-type": "application/jsonx"}
    assert_error(_raw(client, "/model/package/get", body, h), "UNSUPPORTED_CONTENT_TYPE")


def test_regression_a_utf16_body_was_read_as_json(client: httpx.Client, abs_client: Client) -> None:
    """A body the method would take, in UTF-16: MALFORMED_JSON, as documented (not UTF-8)."""
    body = json.dumps({"client_code": abs_client.code, "uid": "nothing-here"}).encode("utf-16")
    h = {**abs_client.headers, "content-type": "application/json"}
    assert "not UTF-8" in assert_error(
        _raw(client, "/model/package/get", body, h), "MALFORMED_JSON"
    )


def test_regression_a_body_with_no_content_type_was_an_invalid_request(
    client: httpx.Client, abs_client: Client
) -> None:
    """A body the method would take, sent with no Content-Type."""
    body = json.dumps({"client_code": abs_client.code, "uid": "nothing-here"}).encode()
    answer = _raw(client, "/model/package/get", body, dict(abs_client.headers))
    assert "no content type" in assert_error(answer, "UNSUPPORTED_CONTENT_TYPE")


def test_body_too_large(client: httpx.Client, abs_client: Client, server: Server) -> None:
    """A body over the configured limit is refused before it is parsed."""
    before = version_counter(server)
    big = {"client_code": abs_client.code, "oauth_access_token": "x" * 70_000}
    answer = call(client, "putDb", big, abs_client.headers)
    assert "exceeds" in assert_error(answer, "BODY_TOO_LARGE")
    assert version_counter(server) == before


@pytest.mark.parametrize("content", [b"[]", b'"client_code"', b"42", b"null", b""])
def test_invalid_request(client: httpx.Client, abs_client: Client, content: bytes) -> None:
    """A body that is not a JSON object (or no body)."""
    h = {**abs_client.headers, "content-type": "application/json"}
    assert_error(_raw(client, "/model/package/putDb", content, h), "INVALID_REQUEST")


# -- field-level errors --------------------------------------------------------------------


def test_required_field(client: httpx.Client, abs_client: Client) -> None:
    """client_code is mandatory everywhere; get and delete need id or uid."""
    h = abs_client.headers
    for method in ["putDb", "get", "getList", "getChanges", "delete"]:
        description = assert_error(call(client, method, {}, h), "REQUIRED_FIELD")
        assert "client_code" in description
    for method in ["get", "delete"]:
        answer = call(client, method, {"client_code": abs_client.code}, h)
        assert "id or uid" in assert_error(answer, "REQUIRED_FIELD")


def test_unknown_field(client: httpx.Client, abs_client: Client, server: Server) -> None:
    """A field the method does not define."""
    before = version_counter(server)
    answer = call(
        client, "putDb", {"client_code": abs_client.code, "colour": "red"}, abs_client.headers
    )
    assert "colour" in assert_error(answer, "UNKNOWN_FIELD")
    answer = call(
        client, "getList", {"client_code": abs_client.code, "offset": 3}, abs_client.headers
    )
    assert_error(answer, "UNKNOWN_FIELD")
    assert version_counter(server) == before


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("putDb", {"id": "abc"}),
        ("putDb", {"id": 1.5}),
        ("putDb", {"id": True}),
        ("putDb", {"version": "7"}),
        ("putDb", {"version": -1}),
        ("putDb", {"payment_import_initiation_id": -5}),
        ("putDb", {"payment_import_initiation_id": 2**63}),
        ("putDb", {"state": 1}),
        ("putDb", {"processing_status": 7}),
        ("putDb", {"oauth_access_token": ["x"]}),
        ("putDb", {"processing_date": 20211030}),
        ("putDb", {"processing_step": "a\u0000b"}),
        ("getList", {"limit": 0}),
        ("getList", {"limit": 1001}),
        ("getList", {"page": 0}),
        ("getList", {"page": "2"}),
        ("getList", {"skip_total_records": "maybe"}),
        ("getChanges", {"offset_version": -1}),
        ("getChanges", {"offset_version": "latest"}),
    ],
)
def test_invalid_field(
    client: httpx.Client, abs_client: Client, server: Server, method: str, extra: dict[str, Any]
) -> None:
    """Wrong types and out-of-range values."""
    before = version_counter(server)
    answer = call(client, method, {"client_code": abs_client.code, **extra}, abs_client.headers)
    field = next(iter(extra))
    assert field in assert_error(answer, "INVALID_FIELD")
    assert version_counter(server) == before


def test_field_too_long(client: httpx.Client, abs_client: Client, server: Server) -> None:
    """Strings over their documented length."""
    before = version_counter(server)
    h = abs_client.headers
    too_long = call(
        client, "putDb", {"client_code": abs_client.code, "processing_step": "s" * 101}, h
    )
    assert "processing_step" in assert_error(too_long, "FIELD_TOO_LONG")
    assert_error(call(client, "getList", {"client_code": "C" * 65}, h), "FIELD_TOO_LONG")
    assert version_counter(server) == before


@pytest.mark.parametrize("value", ["2021-02-30", "30.10.2021", "2021-1-5", "yesterday"])
def test_invalid_date(client: httpx.Client, abs_client: Client, value: str) -> None:
    """Dates that are not real YYYY-MM-DD dates, on write and in list filters."""
    h = abs_client.headers
    write = call(client, "putDb", {"client_code": abs_client.code, "processing_date": value}, h)
    message = f"{value!r} is not a date in YYYY-MM-DD form"
    assert assert_error(write, "INVALID_DATE") == f"processing_date: {message}"
    search = call(client, "getList", {"client_code": abs_client.code, "date_to": value}, h)
    assert assert_error(search, "INVALID_DATE") == f"date_to: {message}"


def test_invalid_date_range(client: httpx.Client, abs_client: Client) -> None:
    """date_from after date_to."""
    body = {"client_code": abs_client.code, "date_from": "2024-02-02", "date_to": "2024-02-01"}
    assert_error(call(client, "getList", body, abs_client.headers), "INVALID_DATE_RANGE")


# -- record-level errors -------------------------------------------------------------------


def test_package_not_found(
    client: httpx.Client, abs_client: Client, server: Server, package: dict[str, Any]
) -> None:
    """Unknown uid or id on update, read and delete; nothing is created instead."""
    h = abs_client.headers
    before = version_counter(server)
    ghost_uid = "00000000-0000-4000-8000-000000000000"
    for method in ["putDb", "get", "delete"]:
        by_uid = call(client, method, {"client_code": abs_client.code, "uid": ghost_uid}, h)
        assert ghost_uid in assert_error(by_uid, "PACKAGE_NOT_FOUND")
        by_id = call(client, method, {"client_code": abs_client.code, "id": 2**62}, h)
        assert_error(by_id, "PACKAGE_NOT_FOUND")
    assert version_counter(server) == before
    listed = call(client, "getList", {"client_code": abs_client.code}, h)
    assert listed["total_records"] == 1


def test_id_uid_mismatch(client: httpx.Client, abs_client: Client, package: dict[str, Any]) -> None:
    """id and uid that name two different packages."""
    h = abs_client.headers
    other = assert_ok(call(client, "putDb", {"client_code": abs_client.code}, h))
    body = {
        "client_code": abs_client.code,
        "id": package["id"],
        "uid": other["uid"],
        "processing_step": "Z",
    }
    assert_error(call(client, "putDb", body, h), "ID_UID_MISMATCH")
    _unchanged(client, abs_client, package)
    _unchanged(client, abs_client, other)
    matching = {**body, "uid": package["uid"]}
    assert assert_ok(call(client, "putDb", matching, h))["processing_step"] == "Z"


def test_version_conflict(
    client: httpx.Client, abs_client: Client, server: Server, package: dict[str, Any]
) -> None:
    """A stale version on update or delete writes nothing."""
    h = abs_client.headers
    current = assert_ok(
        call(
            client,
            "putDb",
            {"client_code": abs_client.code, "uid": package["uid"], "processing_step": "B"},
            h,
        )
    )
    before = version_counter(server)
    stale = {"client_code": abs_client.code, "uid": package["uid"], "version": package["version"]}
    description = assert_error(
        call(client, "putDb", {**stale, "processing_step": "C"}, h), "VERSION_CONFLICT"
    )
    assert str(current["version"]) in description
    assert_error(call(client, "delete", stale, h), "VERSION_CONFLICT")
    assert version_counter(server) == before
    _unchanged(client, abs_client, current)


def test_checksum_conflict(
    client: httpx.Client, abs_client: Client, server: Server, package: dict[str, Any]
) -> None:
    """A checksum from before the last change writes nothing."""
    h = abs_client.headers
    current = assert_ok(
        call(
            client,
            "putDb",
            {"client_code": abs_client.code, "uid": package["uid"], "oauth_access_token": "t2"},
            h,
        )
    )
    assert current["checksum"] != package["checksum"]
    before = version_counter(server)
    stale = {"client_code": abs_client.code, "uid": package["uid"], "checksum": package["checksum"]}
    assert_error(call(client, "putDb", {**stale, "processing_step": "C"}, h), "CHECKSUM_CONFLICT")
    assert_error(call(client, "delete", stale, h), "CHECKSUM_CONFLICT")
    assert version_counter(server) == before
    _unchanged(client, abs_client, current)


def test_package_deleted(
    client: httpx.Client, abs_client: Client, server: Server, package: dict[str, Any]
) -> None:
    """A deleted package cannot be updated, read or deleted again; the feed still has it."""
    h = abs_client.headers
    key = {"client_code": abs_client.code, "uid": package["uid"]}
    deleted = assert_ok(call(client, "delete", key, h))
    before = version_counter(server)
    assert_error(call(client, "putDb", {**key, "processing_step": "again"}, h), "PACKAGE_DELETED")
    assert_error(call(client, "delete", key, h), "PACKAGE_DELETED")
    assert_error(call(client, "get", key, h), "PACKAGE_DELETED")
    assert version_counter(server) == before
    feed = assert_ok(call(client, "getChanges", {"client_code": abs_client.code}, h))
    assert feed == [deleted]


# -- transport-level errors ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/model/package/nope", "/model/account/putDb", "/model/"])
def test_unknown_method(client: httpx.Client, abs_client: Client, path: str) -> None:
    """Paths under /model/ that do not exist."""
    response = client.post(path, json={"client_code": abs_client.code}, headers=abs_client.headers)
    assert response.status_code == 200
    assert_error(response.json(), "UNKNOWN_METHOD")


def test_method_not_allowed(client: httpx.Client, abs_client: Client) -> None:
    """Every method is a POST."""
    response = client.get("/model/package/putDb", headers=abs_client.headers)
    assert response.status_code == 200
    assert_error(response.json(), "METHOD_NOT_ALLOWED")


@pytest.fixture
def broken_server(tmp_path: Any) -> Iterator[Server]:
    """A writegate whose database cannot be opened."""
    url = f"sqlite:///{tmp_path}/missing-dir/writegate.db"
    srv = start_server(url, auto_migrate=False, embedded_worker=False)
    yield srv
    srv.stop()


def test_service_unavailable(broken_server: Server) -> None:
    """The database being down is an ABS error, not a bare 500/503."""
    with broken_server.client() as c:
        response = c.post(
            "/model/package/putDb", json={"client_code": "EN1"}, headers={"x-api-key": "wg_any"}
        )
    assert response.status_code == 200
    payload = response.json()
    assert_error(payload, "SERVICE_UNAVAILABLE")
    assert payload["data_type"] == DATA_TYPE


def test_internal_error(
    client: httpx.Client, abs_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception still answers in the ABS envelope."""

    def explode(*_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "package_changes", explode)
    answer = call(client, "getChanges", {"client_code": abs_client.code}, abs_client.headers)
    description = assert_error(answer, "INTERNAL_ERROR")
    assert "boom" not in description


def test_error_table_in_docs_matches_codes() -> None:
    """docs/abs.md documents exactly the codes the module can answer with."""
    docs = Path(__file__).resolve().parents[3] / "docs" / "abs.md"
    table = docs.read_text().split("## Error codes", 1)[1].split("\n\n", 2)[1]
    documented = dict(re.findall(r"^\| `([A-Z_]+)` \| (.+?) \|$", table, re.MULTILINE))
    assert documented == CODES
