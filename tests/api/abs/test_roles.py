"""ABS roles: abs:read for get/getList/getChanges, abs:write for putDb/delete as well."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.abs.conftest import assert_error, assert_ok, call, new_client, version_counter
from tests.harness import Server

READS = ("get", "getList", "getChanges")
WRITES = ("putDb", "delete")


def _bodies(code: str, package_id: int) -> dict[str, dict[str, Any]]:
    return {
        "get": {"client_code": code, "id": package_id},
        "getList": {"client_code": code},
        "getChanges": {"client_code": code, "offset_version": 0},
        "putDb": {"client_code": code, "id": package_id, "processing_step": "ROLE"},
        "delete": {"client_code": code, "id": package_id},
    }


def test_a_tenant_equal_to_the_code_is_not_enough(
    client: httpx.Client, server: Server, make_principal: Any
) -> None:
    """No role, or another API's role: ROLE_REQUIRED on every method, nothing written."""
    owner = new_client(server, make_principal)
    package = assert_ok(call(client, "putDb", {"client_code": owner.code}, owner.headers))
    before = version_counter(server)
    for roles in ([], ["bookingsupplier-administrator-read"], ["abs"], ["ABS:WRITE"]):
        _, key = make_principal(tenant=owner.code, roles=roles)
        for method, body in _bodies(owner.code, package["id"]).items():
            answer = call(client, method, body, {"x-api-key": key})
            description = assert_error(answer, "ROLE_REQUIRED")
            assert "abs:" in description, description
        # a refusal for the role comes first: nothing about the code is revealed
        answer = call(client, "getList", {"client_code": "EN_NO_SUCH"}, {"x-api-key": key})
        assert_error(answer, "ROLE_REQUIRED")
    assert version_counter(server) == before
    still = assert_ok(
        call(client, "get", {"client_code": owner.code, "id": package["id"]}, owner.headers)
    )
    assert (still["state"], still["processing_step"]) == (0, package["processing_step"])


def test_read_role_reads_and_write_role_writes(
    client: httpx.Client, server: Server, make_principal: Any
) -> None:
    """abs:read may read but not write; abs:write may do both."""
    writer = new_client(server, make_principal)
    _, read_key = make_principal(tenant=writer.code, roles=["abs:read"])
    reader = {"x-api-key": read_key}
    package = assert_ok(call(client, "putDb", {"client_code": writer.code}, writer.headers))
    bodies = _bodies(writer.code, package["id"])
    before = version_counter(server)
    for method in READS:
        assert_ok(call(client, method, bodies[method], reader))
    for method in WRITES:
        assert "abs:write" in assert_error(
            call(client, method, bodies[method], reader), "ROLE_REQUIRED"
        )
    assert_error(call(client, "putDb", {"client_code": writer.code}, reader), "ROLE_REQUIRED")
    assert version_counter(server) == before
    for method in ("putDb", *READS, "delete"):
        assert_ok(call(client, method, bodies[method], writer.headers))


def test_every_method_documents_both_ways_to_send_the_api_key(client: httpx.Client) -> None:
    """OpenAPI: each method takes x-api-key or a bearer token, as `credentials` reads them."""
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"] == {
        "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "HTTPBearer": {"type": "http", "scheme": "bearer"},
    }
    for method in READS + WRITES:
        operation = doc["paths"][f"/model/package/{method}"]["post"]
        assert operation["security"] == [{"APIKeyHeader": []}, {"HTTPBearer": []}], method
    # the key is documented, not a parameter of the operation
    assert "parameters" not in doc["paths"]["/model/package/putDb"]["post"]
