"""`app.dependency_overrides` reaches the modules' routes, the fast JSON path's included."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.abs.conftest import assert_error, assert_ok, call
from tests.harness import Server, uid
from writegate.modules.abs import service
from writegate.modules.abs.routes import require_principal


def test_an_overridden_principal_writes_and_reads_until_the_override_is_gone(
    client: httpx.Client, server: Server, make_principal: Any
) -> None:
    """putDb (a JSON-body route) and get run as the override's principal with no key sent;
    once the override is removed, no key is AUTH_REQUIRED again and the owner's key works."""
    code = uid("EN").upper()
    assert service.register_client(server.services, code, name="override customer")
    owner, key = make_principal(tenant=code, roles=["abs:write"])

    async def as_owner() -> Any:
        return owner

    server.app.dependency_overrides[require_principal] = as_owner
    try:
        created = assert_ok(call(client, "putDb", {"client_code": code}, {}))
        got = assert_ok(call(client, "get", {"client_code": code, "id": created["id"]}, {}))
        assert (got["uid"], got["version"]) == (created["uid"], created["version"])
    finally:
        server.app.dependency_overrides.pop(require_principal, None)
    assert_error(call(client, "putDb", {"client_code": code}, {}), "AUTH_REQUIRED")
    assert_ok(call(client, "putDb", {"client_code": code}, {"x-api-key": key}))
