"""ABS fixtures: a registered client code with a principal of that tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.harness import Server, uid
from writegate.core.audit import current_value
from writegate.modules.abs import service

DATA_TYPE = "system.api.package.packageModel"


@dataclass(frozen=True)
class Client:
    """A registered ABS client code and the API key of a user in that tenant."""

    code: str
    user: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        """Auth headers for this client's user."""
        return {"x-api-key": self.key}


@pytest.fixture
def abs_client(server: Server, make_principal: Any) -> Client:
    """A fresh client code, registered, with one principal in its tenant."""
    return new_client(server, make_principal)


def new_client(server: Server, make_principal: Any, roles: list[str] | None = None) -> Client:
    """Register a client code and create a principal whose tenant it is (abs:write by default)."""
    code = uid("EN").upper()
    assert service.register_client(server.services, code, name="test customer")
    principal, key = make_principal(tenant=code, roles=["abs:write"] if roles is None else roles)
    return Client(code, principal.name, key)


def call(client: httpx.Client, method: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    """POST a JSON body to /model/package/<method>; every answer is HTTP 200."""
    response = client.post(f"/model/package/{method}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def assert_ok(payload: dict[str, Any]) -> Any:
    """Check the positive envelope and return `data`."""
    assert payload["status"] == "ok", payload
    assert payload["error"] == {}
    assert payload["error_description"] == ""
    assert payload["data_type"] == DATA_TYPE
    return payload["data"]


def assert_error(payload: dict[str, Any], code: str) -> str:
    """Check the negative envelope with that error code; return the description."""
    assert payload["status"] == "ERROR", payload
    assert payload["error"] == code, payload
    assert payload["data"] == {}
    assert payload["total_records"] == 0
    assert payload["data_type"] == DATA_TYPE
    assert payload["error_description"]
    description: str = payload["error_description"]
    return description


def version_counter(server: Server) -> int:
    """The global abs.version counter, straight from the database."""
    with server.services.db.read() as s:
        return current_value(s, service.VERSION_COUNTER)
