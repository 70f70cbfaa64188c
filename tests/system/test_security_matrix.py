"""Authentication, role and tenant matrix over every endpoint of every module.

For the key-authenticated APIs (BokaMera, ABS) every operation in /openapi.json is called
with no key, a bogus key and a revoked key; Ikonomikal authenticates by login session, so
its calls are tried with no, bogus and revoked sessions and with another subscriber's.
Each gives the documented refusal, writes nothing, and never shows another tenant's data.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.harness import Server, uid
from tests.system.apis import (
    REFUSAL,
    abs_client_code,
    app_modules,
    module_of,
    new_principal,
    present_modules,
    row_counts,
)

BOKA_WRITE = "bookingsupplier-administrator-write"
BOKA_READ = "bookingsupplier-administrator-read"
ABS_READ = "abs:read"
ABS_WRITE = "abs:write"
IKO_LOGIN = "/bcss_wbcl_wa_sc/api/O1_getSCSessWBLogVer"
IKO_TOKEN = "/bcss_wbcl_wa_sc/api/O1_getSCPrgPrcCheckTkn"
IKO_SAVE = "/bcss_wbcl_wa_ss/api/ss_02_ss07_sav"
IKO_READ = "/bcss_wbcl_wa_ss/api/ss_02_ss07_dat"
IKO_NO_SESSION = 1000144
IKO_BAD_LOGIN = 1000141
IKO_NOT_AUTHORIZED = 1000101
IKO_WRONG_SUBSCRIBER = 1000107
PASSWORD = "Matrix-pw-0123456789"


def _operations(server: Server, module: str) -> list[tuple[str, str, dict[str, Any]]]:
    with server.client() as c:
        spec = c.get("/openapi.json").json()
    modules = app_modules(server)
    out = []
    for path, item in spec["paths"].items():
        if module_of(modules, path) != module:
            continue
        for method, op in item.items():
            concrete = path.replace("{Id}", str(uuid.uuid4())).replace("{id}", "1")
            out.append((method.upper(), concrete, op))
    assert out, f"{module} has no operations"
    return out


def _revoked_key(server: Server, tenant: str, roles: list[str]) -> str:
    key = new_principal(server, tenant, roles)
    with server.services.db.write() as s:
        row = server.services.auth.by_api_key(s, key)
        assert row is not None
        assert server.services.auth.revoke(s, row.name)
    return key


def _unauthorized(module: str, r: httpx.Response) -> bool:
    if not REFUSAL[module](r):
        return False
    if module == "abs":
        return bool(r.json()["error"] in ("AUTH_REQUIRED", "INVALID_API_KEY"))
    return r.status_code == 401


# -- no / bad / revoked credentials on every endpoint ------------------------------------


@pytest.mark.parametrize("module", [m for m in present_modules() if m in ("bokamera", "abs")])
def test_every_keyed_endpoint_refuses_missing_bad_and_revoked_keys(
    server: Server, module: str
) -> None:
    """No key, a well-formed unknown key, a revoked key, junk: 401 / AUTH errors, no write."""
    code = abs_client_code(server) if module == "abs" else str(uuid.uuid4())
    roles = [BOKA_WRITE, BOKA_READ] if module == "bokamera" else [ABS_WRITE]
    revoked = _revoked_key(server, code, roles)
    variants = {
        "none": {},
        "bogus": {"x-api-key": "wg_" + "A" * 43},
        "bearer bogus": {"authorization": "Bearer wg_nope"},
        "revoked": {"x-api-key": revoked},
        "revoked bearer": {"authorization": f"Bearer {revoked}"},
        "empty": {"x-api-key": ""},
        "huge": {"x-api-key": "k" * 5000},
        "sql": {"x-api-key": "' OR '1'='1"},
    }
    body = {"client_code": code, "CompanyId": code, "ApiEndpoint": "http://127.0.0.1:9"}
    before = row_counts(server)
    problems = []
    with server.client() as c:
        for method, path, _op in _operations(server, module):
            for name, headers in variants.items():
                kw: dict[str, Any] = {"headers": headers}
                if method != "GET":
                    kw["json"] = body
                r = c.request(method, path, **kw)
                if not _unauthorized(module, r):
                    problems.append(f"{name}: {method} {path} -> {r.status_code} {r.text[:150]}")
    assert problems == [], "\n".join(problems)
    # Only what this test created itself (client code, principals) may have appeared.
    after = row_counts(server)
    grown = {t for t in after if after[t] != before.get(t)}
    assert grown <= {"principals", "abs_clients"}, grown


# -- ABS: tenants ---------------------------------------------------------------------------


def _abs(c: httpx.Client, method: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    r = c.post(f"/model/package/{method}", json=body, headers={"x-api-key": key})
    assert r.status_code < 500, r.text
    data: dict[str, Any] = r.json()
    return data


@pytest.mark.skipif("abs" not in present_modules(), reason="abs module not in this tree")
def test_abs_tenant_matrix(server: Server) -> None:
    """Another tenant's code is denied; its package ids look unknown under one's own code."""
    mine, theirs = abs_client_code(server), abs_client_code(server)
    my_key = new_principal(server, mine, [ABS_WRITE])
    their_key = new_principal(server, theirs, [ABS_WRITE])
    with server.client() as c:
        created = _abs(c, "putDb", {"client_code": theirs, "processing_status": "NEW"}, their_key)
        assert created["status"] == "ok", created
        pid, puid = created["data"]["id"], created["data"]["uid"]
        denied = [
            ("putDb", {"client_code": theirs, "id": pid}),
            ("get", {"client_code": theirs, "id": pid}),
            ("delete", {"client_code": theirs, "id": pid}),
            ("getList", {"client_code": theirs}),
            ("getChanges", {"client_code": theirs, "offset_version": 0}),
            # a code that does not exist answers exactly like someone else's: no probing
            ("get", {"client_code": "EN_NO_SUCH_CODE", "id": pid}),
        ]
        for method, body in denied:
            answer = _abs(c, method, body, my_key)
            assert answer["error"] == "CLIENT_ACCESS_DENIED", (method, answer)
            assert answer["data"] == {}
        for body in ({"client_code": mine, "id": pid}, {"client_code": mine, "uid": puid}):
            for method in ("get", "putDb", "delete"):
                answer = _abs(c, method, body, my_key)
                assert answer["error"] == "PACKAGE_NOT_FOUND", (method, answer)
        unknown = _abs(c, "get", {"client_code": mine, "id": 987654321}, my_key)
        assert unknown["error"] == "PACKAGE_NOT_FOUND"
        listing = _abs(c, "getChanges", {"client_code": mine, "offset_version": 0}, my_key)
        assert listing["status"] == "ok"
        assert listing["data"] == []
        still = _abs(c, "get", {"client_code": theirs, "id": pid}, their_key)
        assert still["status"] == "ok"
        assert still["data"]["state"] == 0


@pytest.mark.skipif("abs" not in present_modules(), reason="abs module not in this tree")
def test_abs_role_matrix(server: Server) -> None:
    """Every /model/ operation: no ABS role or another API's role is ROLE_REQUIRED, abs:read
    only reads, abs:write and superadmin do everything; refusals write nothing."""
    code = abs_client_code(server)
    writer = new_principal(server, code, [ABS_WRITE])
    reader = new_principal(server, code, [ABS_READ])
    outsiders = {
        "no role": new_principal(server, code, []),
        "bokamera read": new_principal(server, code, [BOKA_READ]),
        "bokamera write": new_principal(server, code, [BOKA_WRITE]),
        "ikonomikal": new_principal(server, code, ["ikonomikal", "ikonomikal:ss07"]),
    }
    admin = new_principal(server, "ops", ["superadmin"])
    with server.client() as c:
        created = _abs(c, "putDb", {"client_code": code, "processing_status": "NEW"}, writer)
        assert created["status"] == "ok", created
        pid = created["data"]["id"]
        bodies = {
            "putDb": {"client_code": code, "id": pid, "processing_step": "X"},
            "get": {"client_code": code, "id": pid},
            "getList": {"client_code": code},
            "getChanges": {"client_code": code, "offset_version": 0},
            "delete": {"client_code": code, "id": pid},
        }
        operations = [path.rsplit("/", 1)[1] for _m, path, _op in _operations(server, "abs")]
        assert sorted(operations) == sorted(bodies), operations
        writes = {"putDb", "delete"}
        before = row_counts(server)
        problems = []
        for who, key in outsiders.items():
            for method in operations:
                answer = _abs(c, method, bodies[method], key)
                if answer["error"] != "ROLE_REQUIRED" or answer["data"] != {}:
                    problems.append(f"{who}: {method} -> {answer}")
        for method in operations:
            answer = _abs(c, method, bodies[method], reader)
            expected = "ROLE_REQUIRED" if method in writes else {}
            if answer["error"] != expected:
                problems.append(f"abs:read: {method} -> {answer}")
        assert problems == [], "\n".join(problems)
        assert row_counts(server) == before
        for key in (writer, admin):
            for method in ("putDb", "get", "getList", "getChanges"):
                answer = _abs(c, method, bodies[method], key)
                assert answer["status"] == "ok", (method, answer)
        assert _abs(c, "delete", bodies["delete"], admin)["status"] == "ok"


# -- BokaMera: roles and companies ------------------------------------------------------------


@pytest.mark.skipif("bokamera" not in present_modules(), reason="bokamera not in this tree")
def test_bokamera_role_and_company_matrix(server: Server) -> None:
    """Missing role: 403. Another company's CompanyId: 403. Another company's sync: 404."""
    a_company, b_company = str(uuid.uuid4()), str(uuid.uuid4())
    a_key = new_principal(server, a_company, [BOKA_WRITE])
    b_key = new_principal(server, b_company, [BOKA_WRITE])
    reader = new_principal(server, a_company, [BOKA_READ])
    nobody = new_principal(server, a_company, [])
    settings = {"ApiEndpoint": "http://127.0.0.1:9", "Username": "vaka", "Password": "pw-" + uid()}
    with server.client() as c:

        def call(method: str, path: str, key: str, **kw: Any) -> httpx.Response:
            r = c.request(method, path, headers={"x-api-key": key}, **kw)
            assert REFUSAL["bokamera"](r) or r.status_code < 300, r.text
            return r

        assert call("POST", "/codelock/axema/settings", a_key, json=settings).status_code == 200
        sync = call("POST", "/codelock/axema/usersync", a_key, json={})
        assert sync.status_code == 200, sync.text
        sync_id = sync.json()["Id"]

        # missing role
        for method, path, kw in [
            ("POST", "/codelock/axema/usersync", {"json": {}}),
            ("POST", "/codelock/axema/settings", {"json": settings}),
            ("PUT", "/codelock/axema/settings", {"json": {"Username": "x"}}),
        ]:
            assert call(method, path, reader, **kw).status_code == 403, (method, path)
        for method, path in [
            ("GET", f"/codelock/axema/usersync/{sync_id}"),
            ("GET", "/codelock/axema/usersync"),
            ("GET", "/codelock/axema/settings"),
            ("GET", "/customers"),
            ("POST", "/codelock/axema/usersync"),
        ]:
            assert call(method, path, nobody, json={}).status_code == 403, (method, path)
        assert call("GET", f"/codelock/axema/usersync/{sync_id}", reader).status_code == 200

        # another company
        for method, path, kw in [
            ("POST", "/codelock/axema/usersync", {"json": {"CompanyId": a_company}}),
            ("GET", "/codelock/axema/usersync", {"params": {"CompanyId": a_company}}),
            ("GET", "/codelock/axema/settings", {"params": {"CompanyId": a_company}}),
            ("PUT", "/codelock/axema/settings", {"json": {"CompanyId": a_company}}),
            ("GET", "/customers", {"params": {"CompanyId": a_company}}),
        ]:
            assert call(method, path, b_key, **kw).status_code == 403, (method, path)
        theirs = call("GET", f"/codelock/axema/usersync/{sync_id}", b_key)
        unknown = call("GET", f"/codelock/axema/usersync/{uuid.uuid4()}", b_key)
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["ResponseStatus"]["ErrorCode"] == "NotFound"
        assert unknown.json()["ResponseStatus"]["ErrorCode"] == "NotFound"
        own_list = call("GET", "/codelock/axema/usersync", b_key).json()
        assert sync_id not in {s["Id"] for s in own_list["Results"]}

        # a superadmin is explicit, and it does see company A
        admin = new_principal(server, "ops", ["superadmin"])
        seen = call(
            "GET", "/codelock/axema/usersync", admin, params={"CompanyId": a_company}
        ).json()
        assert sync_id in {s["Id"] for s in seen["Results"]}
        view = call("GET", "/codelock/axema/settings", a_key).json()
        assert settings["Password"] not in str(view)


# -- Ikonomikal: sessions, roles and subscribers -------------------------------------------


def _iko_user(server: Server, subs: str, roles: list[str]) -> str:
    email = f"{uid('sec')}@example.com"
    with server.services.db.write() as s:
        server.services.auth.create(
            s,
            name=email,
            tenant=subs,
            roles=roles,
            password=PASSWORD,
            attrs={"user_code": "API01", "group": "G1"},
        )
    return email


def _iko_login(c: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = c.post(
        IKO_LOGIN, json={"userID": email, "userPW": password, "userCap": "", "timeOffSet": 0}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _session(login: dict[str, Any]) -> dict[str, Any]:
    return {
        "portalID": "",
        "portID": 0,
        "subsID": login["subsID"],
        "intGID": login["intGID"],
        "userID": login["userID"],
        "sessID": login["sessID"],
        "timeOffSet": 0,
    }


def _iko_token(c: httpx.Client, session: dict[str, Any], proc_id: int) -> int:
    body = {
        "pgProcTkn": {"procID": proc_id, "prgInf": {"pMODL": "SS", "pPRGM": "SS07"}},
        **session,
    }
    answer = c.post(IKO_TOKEN, json=body).json()
    return int(answer["rspPrc"]["rspID"])


def _iko_save(c: httpx.Client, session: dict[str, Any], code: str) -> dict[str, Any]:
    body = {
        "prgInf": {"pMODL": "SS", "pPRGM": "SS07", "pPRGDSC": ""},
        "saveData": {"f001": code, "f002": "Secret department", "f003": "", "f004": 0},
        "cmdStat": 0,
        **session,
    }
    data: dict[str, Any] = c.post(IKO_SAVE, json=body).json()
    return data


@pytest.mark.skipif("ikonomikal" not in present_modules(), reason="ikonomikal not in this tree")
def test_ikonomikal_session_role_and_subscriber_matrix(server: Server) -> None:
    """Bad logins look alike; bogus, revoked and foreign sessions are refused; reads stay
    inside the subscriber."""
    subs_a, subs_b = uid("7"), uid("8")
    alice = _iko_user(server, subs_a, ["ikonomikal", "ikonomikal:ss07"])
    bob = _iko_user(server, subs_b, ["ikonomikal", "ikonomikal:ss07"])
    mallory = _iko_user(server, subs_a, ["ikonomikal"])  # may log in, no SS07 role
    with server.client() as c:
        # authentication: wrong password, unknown user, no login role - one message
        for email, pw in [(alice, "wrong"), ("nobody@example.com", PASSWORD), (alice, "")]:
            answer = _iko_login(c, email, pw)
            assert answer["rspPrc"]["rspID"] in (IKO_BAD_LOGIN, 1000086), answer
            assert answer["sessID"] == ""
        a = _session(_iko_login(c, alice))
        b = _session(_iko_login(c, bob))
        m = _session(_iko_login(c, mallory))

        assert _iko_token(c, a, 1) == 0
        saved = _iko_save(c, a, "SECRET")
        assert saved["rspPrc"]["rspID"] == 0, saved

        # bogus and missing sessions, on every session-bearing call
        for bad in ({**a, "sessID": str(uuid.uuid4())}, {**a, "sessID": ""}, {**a, "sessID": "'"}):
            assert _iko_token(c, bad, 1) != 0
            refused = _iko_save(c, bad, "NOPE")
            assert refused["rspPrc"]["rspID"] != 0
            assert refused["parCode"] == []
        # another subscriber's subsID with one's own session
        assert _iko_token(c, {**b, "subsID": subs_a}, 3) == IKO_WRONG_SUBSCRIBER
        # missing role
        assert _iko_token(c, m, 1) == IKO_NOT_AUTHORIZED
        # another subscriber's data is invisible
        assert _iko_token(c, b, 3) == 0
        read = c.post(
            IKO_READ,
            json={"prgInf": {"pMODL": "SS", "pPRGM": "SS07"}, "parCode": ["SECRET"], **b},
        ).json()
        assert "Secret department" not in str(read)

        # a revoked user's live session dies at once
        with server.services.db.write() as s:
            assert server.services.auth.revoke(s, alice)
        assert _iko_token(c, a, 1) == IKO_NO_SESSION
        assert _iko_login(c, alice)["rspPrc"]["rspID"] == IKO_BAD_LOGIN


# -- jef-one: one system's job ids are unknown to another ---------------------------------------


@pytest.mark.skipif("bokamera" not in present_modules(), reason="needs a second module's jobs")
def test_jef_one_job_lookup_does_not_reveal_other_modules_jobs(server: Server) -> None:
    """A job id of another API (another tenant) answers exactly like a random id."""
    company = str(uuid.uuid4())
    key = new_principal(server, company, [BOKA_WRITE])
    with server.client() as c:
        settings = {"ApiEndpoint": "http://127.0.0.1:9", "Username": "u", "Password": "p"}
        r = c.post("/codelock/axema/settings", json=settings, headers={"x-api-key": key})
        assert r.status_code == 200, r.text
        sync = c.post("/codelock/axema/usersync", json={}, headers={"x-api-key": key}).json()
        with server.services.db.read() as s:
            job_ids = [
                j.id
                for j in server.services.jobs.find(s, tenant=None, limit=1000)
                if j.kind.startswith("bokamera.")
            ]
        assert job_ids, sync
        foreign = c.get("/jef-one-get-job-by-job-id", params={"job_id": job_ids[0]}).json()
        random_id = str(uuid.uuid4())
        unknown = c.get("/jef-one-get-job-by-job-id", params={"job_id": random_id}).json()
        assert foreign["is_found"] is False
        assert unknown["is_found"] is False
        assert set(foreign) == set(unknown)
        assert foreign["message"].replace(job_ids[0], "X") == unknown["message"].replace(
            random_id, "X"
        )
