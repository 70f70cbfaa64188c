"""Authentication, roles, company scope and bad input, in ServiceStack's ResponseStatus."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.bokamera.conftest import (
    READ,
    SETTINGS,
    SYNC,
    WRITE,
    customers,
    start_sync,
    wait_done,
)
from tests.harness import Server
from writegate.modules.bokamera.models import AxemaSettingsRow


def status_of(r: httpx.Response) -> dict[str, Any]:
    """The ResponseStatus of an error response."""
    body: dict[str, Any] = r.json()
    return body["ResponseStatus"]  # type: ignore[no-any-return]


def test_missing_bad_and_revoked_keys_get_401(
    client: httpx.Client, server: Server, make_principal: Any
) -> None:
    """No key, an unknown key, a revoked key: 401 with a ResponseStatus, on every endpoint."""
    for method, path in (("POST", SYNC), ("GET", SYNC), ("GET", f"{SYNC}/{uuid.uuid4()}")):
        r = client.request(method, path)
        assert r.status_code == 401
        assert status_of(r)["ErrorCode"] == "Unauthorized"
        assert "API key" in status_of(r)["Message"]
    r = client.post(SYNC, headers={"x-api-key": "wg_not-a-real-key"})
    assert r.status_code == 401
    assert "Invalid" in status_of(r)["Message"]
    r = client.get("/customers", headers={"authorization": "Bearer wg_nope"})
    assert r.status_code == 401
    principal, key = make_principal(tenant=str(uuid.uuid4()), roles=[WRITE])
    assert client.get(SYNC, headers={"x-api-key": key}).status_code == 200
    with server.services.db.write() as s:
        assert server.services.auth.revoke(s, principal.name)
    assert client.get(SYNC, headers={"x-api-key": key}).status_code == 401


def test_roles_write_read_and_none(client: httpx.Client, make_principal: Any, vaka: Any) -> None:
    """No BokaMera role: 403 everywhere; the read role may read but not start or configure."""
    tenant = str(uuid.uuid4())
    _, nobody = make_principal(tenant=tenant, roles=["some-other-role"])
    _, reader = make_principal(tenant=tenant, roles=[READ])
    _, writer = make_principal(tenant=tenant, roles=[WRITE])
    sim = vaka(3)
    for path in (SYNC, SETTINGS, "/customers"):
        r = client.get(path, headers={"x-api-key": nobody})
        assert r.status_code == 403, path
        assert status_of(r)["ErrorCode"] == "Forbidden"
    r = client.post(SYNC, json={}, headers={"x-api-key": nobody})
    assert r.status_code == 403
    assert WRITE in status_of(r)["Message"]
    settings = {"ApiEndpoint": sim.url, "Username": "vaka", "Password": "vaka"}
    assert client.post(SETTINGS, json=settings, headers={"x-api-key": reader}).status_code == 403
    assert client.post(SETTINGS, json=settings, headers={"x-api-key": writer}).status_code == 200
    assert client.post(SYNC, json={}, headers={"x-api-key": reader}).status_code == 403
    r = client.post(SYNC, json={}, headers={"x-api-key": writer})
    assert r.status_code == 200
    sync_id = r.json()["Id"]
    r = client.get(f"{SYNC}/{sync_id}", headers={"x-api-key": reader})
    assert r.status_code == 200
    assert r.json()["Id"] == sync_id
    assert client.get(SETTINGS, headers={"x-api-key": reader}).status_code == 200


def test_other_company_is_out_of_reach(
    client: httpx.Client, make_principal: Any, vaka: Any, company: Any
) -> None:
    """An administrator can neither start nor see another company's syncs, settings, customers."""
    sim = vaka(5)
    a, b = company(sim), company(sim)
    sync_b = start_sync(client, b)["Id"]
    wait_done(client, b, sync_b)
    r = client.post(SYNC, json={"CompanyId": b.id}, headers=a.headers)
    assert r.status_code == 403
    assert b.id in status_of(r)["Message"]
    assert client.get(SYNC, params={"CompanyId": b.id}, headers=a.headers).status_code == 403
    assert client.get(SETTINGS, params={"CompanyId": b.id}, headers=a.headers).status_code == 403
    assert client.get("/customers", params={"CompanyId": b.id}, headers=a.headers).status_code == (
        403
    )
    r = client.get(f"{SYNC}/{sync_b}", headers=a.headers)
    assert r.status_code == 404
    assert client.get(SYNC, headers=a.headers).json()["Results"] == []
    # Their own company id, given explicitly, is fine.
    assert client.get(SYNC, params={"CompanyId": a.id}, headers=a.headers).status_code == 200

    _, root = make_principal(tenant=str(uuid.uuid4()), roles=["superadmin"])
    su = {"x-api-key": root}
    r = client.post(SYNC, json={"CompanyId": b.id}, headers=su)
    assert r.status_code == 200, r.text
    assert r.json()["CompanyId"] == b.id
    assert wait_done(client, b, r.json()["Id"])["Status"] == 2
    assert client.get(f"{SYNC}/{sync_b}", headers=su).status_code == 200
    listed = client.get(SYNC, params={"CompanyId": b.id}, headers=su).json()
    assert {x["Id"] for x in listed["Results"]} == {sync_b, r.json()["Id"]}
    assert len(customers(client, b)) == 5


def test_unknown_and_malformed_ids(client: httpx.Client, company: Any) -> None:
    """An unknown Id is 404; an Id that is not a GUID is a 400 naming the field."""
    co = company(None)
    r = client.get(f"{SYNC}/{uuid.uuid4()}", headers=co.headers)
    assert r.status_code == 404
    assert status_of(r)["ErrorCode"] == "NotFound"
    r = client.get(f"{SYNC}/not-a-guid", headers=co.headers)
    assert r.status_code == 400
    assert status_of(r)["Errors"][0]["FieldName"] == "Id"
    r = client.get(SYNC, params={"CompanyId": "nope"}, headers=co.headers)
    assert r.status_code == 400
    assert status_of(r)["Errors"][0]["FieldName"] == "CompanyId"
    assert client.get(SYNC, params={"CompanyId": ""}, headers=co.headers).status_code == 200
    r = client.get(SYNC, params={"Status": 7}, headers=co.headers)
    assert r.status_code == 400
    assert status_of(r)["Errors"][0]["FieldName"] == "Status"


def test_malformed_bodies_get_400_and_write_nothing(
    client: httpx.Client, vaka: Any, company: Any
) -> None:
    """Bad JSON, wrong types, wrong content type: clear 400/415, no sync recorded."""
    co = company(vaka(2))
    h = {**co.headers, "content-type": "application/json"}
    r = client.post(SYNC, content=b'{"CompanyId": ', headers=h)
    assert r.status_code == 400
    assert status_of(r)["ErrorCode"] == "SerializationException"
    assert "Malformed JSON" in status_of(r)["Message"]
    r = client.post(SYNC, content=b"[1, 2]", headers=h)
    assert r.status_code == 400
    assert "JSON object" in status_of(r)["Message"]
    r = client.post(SYNC, json={"CompanyId": "not-a-guid"}, headers=co.headers)
    assert r.status_code == 400
    err = status_of(r)
    assert err["ErrorCode"] == "InvalidGuid"
    assert err["Errors"][0]["FieldName"] == "CompanyId"
    r = client.post(SYNC, json={"CompanyId": 12}, headers=co.headers)
    assert r.status_code == 400
    r = client.post(
        SYNC, content=b"<CompanyId/>", headers={**co.headers, "content-type": "application/pdf"}
    )
    assert r.status_code == 415
    assert status_of(r)["ErrorCode"] == "UnsupportedMediaType"
    r = client.post(SYNC, content=b"x" * 70_000, headers=h)
    assert r.status_code == 413
    assert "ResponseStatus" in r.json()
    assert client.get(SYNC, headers=co.headers).json()["Total"] == 0


def test_settings_validation_conflict_update_and_secrecy(
    client: httpx.Client, server: Server, company: Any, vaka: Any
) -> None:
    """Settings: field errors, 409 on a second POST, PUT changes, the password never returned."""
    co = company(None)
    r = client.post(SYNC, json={}, headers=co.headers)
    assert r.status_code == 400
    assert status_of(r)["ErrorCode"] == "AxemaSettingsMissing"
    assert client.get(SETTINGS, headers=co.headers).status_code == 404
    assert client.put(SETTINGS, json={"Username": "x"}, headers=co.headers).status_code == 404

    r = client.post(SETTINGS, json={"ApiEndpoint": "ftp://x", "ApiPort": 0}, headers=co.headers)
    assert r.status_code == 400
    fields = {e["FieldName"] for e in status_of(r)["Errors"]}
    assert fields == {"ApiEndpoint", "ApiPort", "Username", "Password"}
    # Regression: a password in the URL was stored, shown by GET and in every sync's error.
    in_url = {"ApiEndpoint": "http://admin:UrlPw777@vaka.example", "Username": "u", "Password": "p"}
    for write in (client.post, client.put):
        r = write(SETTINGS, json=in_url, headers=co.headers)
        assert r.status_code == 400, r.text
        [error] = status_of(r)["Errors"]
        assert (error["FieldName"], error["ErrorCode"]) == ("ApiEndpoint", "PredicateValidator")
        # The rule's own words, not Python's ("Value error, ..." and ErrorCode ValueError).
        assert error["Message"].startswith("must not carry a user or password"), error
        assert "UrlPw777" not in r.text

    sim = vaka(4)
    secret = "s3cret-" + uuid.uuid4().hex
    body = {"ApiEndpoint": sim.url, "Username": "vaka", "Password": secret}
    r = client.post(SETTINGS, json=body, headers=co.headers)
    assert r.status_code == 200
    view = r.json()
    assert view["PasswordIsSet"] is True
    assert secret not in r.text
    assert "Password" not in view
    r = client.post(SETTINGS, json=body, headers=co.headers)
    assert r.status_code == 409
    with server.services.db.read() as s:
        stored = s.scalar(
            select(AxemaSettingsRow.password_encrypted).where(AxemaSettingsRow.company_id == co.id)
        )
    assert stored is not None
    assert secret not in stored

    # The wrong password fails the sync; PUT the right one and it works.
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert done["Status"] == 3
    r = client.put(SETTINGS, json={"Password": "vaka"}, headers=co.headers)
    assert r.status_code == 200
    assert r.json()["ApiEndpoint"] == sim.url
    assert "Password" not in r.json()
    done = wait_done(client, co, start_sync(client, co)["Id"])
    assert (done["Status"], done["UsersCreated"]) == (2, 4)


#: the namespace company ids of non-GUID tenants were once derived in (UUIDv5, anyone can compute)
OLD_TENANT_NAMESPACE = uuid.UUID("0c0a1e5e-7b1c-4d0e-9a51-b0ca3e7a0001")


def test_one_tenant_is_one_company(
    client: httpx.Client, server: Server, make_principal: Any, vaka: Any, company: Any
) -> None:
    """Other spellings of a company's GUID, and names, are no company: 403, nothing written."""
    co = company(vaka(2))
    sync_id = start_sync(client, co)["Id"]
    wait_done(client, co, sync_id)
    plain = uuid.UUID(co.id)
    aliases = [plain.hex.upper(), plain.hex, co.id.upper(), f"{{{co.id}}}", plain.urn]
    settings = {"ApiEndpoint": "http://127.0.0.1:9", "Username": "evil", "Password": "evil"}
    for alias in aliases:
        _, key = make_principal(tenant=alias, roles=[WRITE])
        h = {"x-api-key": key}
        for method, path, kw in [
            ("GET", SETTINGS, {}),
            ("PUT", SETTINGS, {"json": {"Username": "evil"}}),
            ("POST", SETTINGS, {"json": settings}),
            ("POST", SYNC, {"json": {}}),
            ("GET", SYNC, {}),
            ("GET", f"{SYNC}/{sync_id}", {}),
            ("GET", "/customers", {}),
            ("GET", SETTINGS, {"params": {"CompanyId": co.id}}),
        ]:
            r = client.request(method, path, headers=h, **kw)
            assert r.status_code == 403, (alias, method, path, r.text)
            err = status_of(r)
            assert err["ErrorCode"] == "Forbidden"
            assert "not a BokaMera company" in err["Message"], err
    assert client.get(SETTINGS, headers=co.headers).json()["Username"] == "vaka"
    assert client.get(SYNC, headers=co.headers).json()["Total"] == 1

    # A name is no company either, so nobody can hold the GUID once derived from it.
    name = f"acme-{uuid.uuid4().hex[:8]}"
    _, named = make_principal(tenant=name, roles=[WRITE])
    r = client.post(SETTINGS, json=settings, headers={"x-api-key": named})
    assert r.status_code == 403, r.text
    derived = str(uuid.uuid5(OLD_TENANT_NAMESPACE, name))
    _, holder = make_principal(tenant=derived, roles=[WRITE])
    assert client.get(SETTINGS, headers={"x-api-key": holder}).status_code == 404
    with server.services.db.read() as s:
        assert s.get(AxemaSettingsRow, derived) is None

    # A superadmin's tenant need not be a company: it names the company it acts on.
    _, root = make_principal(tenant=name, roles=["superadmin"])
    su = {"x-api-key": root}
    r = client.get(SETTINGS, headers=su)
    assert r.status_code == 400, r.text
    assert status_of(r)["Errors"][0]["FieldName"] == "CompanyId"
    assert client.get(SETTINGS, params={"CompanyId": co.id}, headers=su).status_code == 200
    assert client.get(SYNC, headers=su).status_code == 200


def test_a_wrong_method_is_405_naming_every_method_of_its_path(
    client: httpx.Client, company: Any
) -> None:
    """The sync path has a POST route and a GET route: a 405's Allow names both."""
    co = company(None)
    for method in ("PUT", "DELETE", "PATCH"):
        r = client.request(method, SYNC, headers=co.headers)
        assert r.status_code == 405, r.text
        assert status_of(r)["ErrorCode"]
        assert r.headers["allow"] == "GET, POST"
    r = client.delete(f"{SYNC}/{uuid.uuid4()}", headers=co.headers)
    assert (r.status_code, r.headers["allow"]) == (405, "GET")


def test_fields_bind_in_any_letter_case(
    client: httpx.Client, make_principal: Any, vaka: Any, company: Any
) -> None:
    """ServiceStack binds a DTO's fields case-insensitively: `companyId` in a body or a form,
    `companyid` in a query string, are CompanyId. They were ignored: an administrator's sync
    of another company started their own, a superadmin's listing showed every company's."""
    sim = vaka(3)
    a, b = company(sim), company(sim)
    wait_done(client, a, start_sync(client, a)["Id"])
    r = client.post(SYNC, json={"companyId": b.id}, headers=a.headers)
    assert r.status_code == 403
    assert b.id in status_of(r)["Message"]
    r = client.post(SYNC, data={"COMPANYID": b.id}, headers=a.headers)
    assert r.status_code == 403
    assert client.get(SYNC, params={"companyid": b.id}, headers=a.headers).status_code == 403

    _, root = make_principal(tenant=str(uuid.uuid4()), roles=["superadmin"])
    su = {"x-api-key": root}
    r = client.post(SYNC, json={"companyid": b.id}, headers=su)
    assert r.status_code == 200, r.text
    assert r.json()["CompanyId"] == b.id
    assert wait_done(client, b, r.json()["Id"])["Status"] == 2
    listed = client.get(SYNC, params={"companyid": b.id, "STATUS": 2}, headers=su).json()
    assert [x["CompanyId"] for x in listed["Results"]] == [b.id]
    assert len(customers(client, b)) == 3


def test_regression_settings_stored_meanwhile_were_a_503_not_a_409(
    client: httpx.Client, server: Server, company: Any
) -> None:
    """PostgreSQL: a POST of settings whose company got them from another transaction after
    its look (concurrent POSTs) met the primary key and answered 503 "database unavailable".
    It is the documented 409 Conflict, and the settings stored first are kept."""
    services = server.services
    if not services.db.is_postgres:
        pytest.skip("SQLite's one writer: the look and the INSERT cannot be split by another")
    co = company(None)
    fired: list[str] = []

    def store_first(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if fired or not statement.startswith("INSERT INTO bokamera_axema_settings"):
            return
        fired.append(statement)
        now = services.clock.now()
        with services.db.write() as other:  # a concurrent POST's transaction, committed
            other.add(
                AxemaSettingsRow(
                    company_id=co.id,
                    tenant=co.id,
                    api_endpoint="http://first.example",
                    api_port=None,
                    username="first",
                    password_encrypted="x",
                    created_at=now,
                    updated_at=now,
                )
            )

    body = {"ApiEndpoint": "http://second.example", "Username": "second", "Password": "pw"}
    services.db.listen("before_cursor_execute", store_first)
    try:
        r = client.post(SETTINGS, json=body, headers=co.headers)
    finally:
        services.db.unlisten("before_cursor_execute", store_first)
    assert fired
    assert r.status_code == 409, r.text
    assert status_of(r)["ErrorCode"] == "Conflict"
    assert "already has Axema Vaka settings" in status_of(r)["Message"]
    assert client.get(SETTINGS, headers=co.headers).json()["Username"] == "first"
