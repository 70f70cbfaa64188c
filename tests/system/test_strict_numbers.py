"""JSON numbers are numbers: true is not 1 and "5" is not 5, in every API's integer fields.

Each refusal comes in the API's own envelope and names the field; nothing is stored.
(Ikonomikal's integer fields: tests/api/ikonomikal/test_hostile_text.py.)
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.harness import Server
from tests.system.apis import REFUSAL, abs_client_code, new_principal, present_modules


def needs(module: str) -> Any:
    """Skip when the module is not in this tree."""
    return pytest.mark.skipif(module not in present_modules(), reason=f"{module} not present")


@needs("bokamera")
@pytest.mark.parametrize("port", [True, False, "8080", 8080.0])
def test_bokamera_api_port_takes_json_integers_only(server: Server, port: Any) -> None:
    """`ApiPort: true` was stored as port 1: now 400 InvalidInteger naming ApiPort, on
    create and on update, and the settings are not stored."""
    company = str(uuid.uuid4())
    roles = ["bookingsupplier-administrator-write", "bookingsupplier-administrator-read"]
    headers = {"x-api-key": new_principal(server, company, roles)}
    body = {"ApiEndpoint": "http://vaka.example", "Username": "u", "Password": "p"}
    with server.client() as c:
        for method in ("POST", "PUT"):
            if method == "PUT":
                r = c.post("/codelock/axema/settings", json=body, headers=headers)
                assert r.status_code == 200, r.text
            r = c.request(
                method, "/codelock/axema/settings", json={**body, "ApiPort": port}, headers=headers
            )
            assert r.status_code == 400, r.text
            assert REFUSAL["bokamera"](r)
            [error] = r.json()["ResponseStatus"]["Errors"]
            assert (error["ErrorCode"], error["FieldName"]) == ("InvalidInteger", "ApiPort")
        stored = c.get("/codelock/axema/settings", headers=headers).json()
        assert stored["ApiPort"] is None


@needs("abs")
@pytest.mark.parametrize(
    ("method", "field", "value"),
    [
        ("putDb", "state", False),
        ("putDb", "state", 0.0),
        ("putDb", "version", True),
        ("putDb", "payment_import_initiation_id", "7"),
        ("getList", "limit", True),
        ("getList", "page", "2"),
        ("getList", "skip_total_records", 1),
        ("getChanges", "offset_version", False),
    ],
)
def test_abs_numbers_and_booleans_are_json_types(
    server: Server, method: str, field: str, value: Any
) -> None:
    """INT64 fields take JSON integers (not booleans, floats or strings); skip_total_records
    takes a boolean or yes/no (not a number): INVALID_FIELD naming the field."""
    code = abs_client_code(server)
    headers = {"x-api-key": new_principal(server, code, ["abs:write"])}
    with server.client() as c:
        r = c.post(
            f"/model/package/{method}", json={"client_code": code, field: value}, headers=headers
        )
    assert REFUSAL["abs"](r), r.text
    assert r.json()["error"] == "INVALID_FIELD", r.text
    assert r.json()["error_description"].startswith(f"{field}:"), r.text
