"""ABS's console views: packages per client and the changes feed, one tenant at a time."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.abs.conftest import Client, assert_ok, call, new_client
from tests.console.views import rows_by_first, view
from tests.harness import Server


def test_packages_per_client_and_changes_feed(
    client: httpx.Client, server: Server, abs_client: Client, make_principal: Any
) -> None:
    """Two packages, one deleted: counts per client, both in the feed; another client hidden."""
    h = abs_client.headers
    first = assert_ok(call(client, "putDb", {"client_code": abs_client.code}, h))
    second = assert_ok(call(client, "putDb", {"client_code": abs_client.code}, h))
    assert_ok(call(client, "delete", {"client_code": abs_client.code, "id": second["id"]}, h))
    other = new_client(server, make_principal)
    assert_ok(call(client, "putDb", {"client_code": other.code}, other.headers))
    _, operator = make_principal(tenant=abs_client.code, roles=["operator"])
    clients = rows_by_first(view(client, operator, "ABS packages per client"))
    assert set(clients) == {abs_client.code}
    assert clients[abs_client.code]["packages"] == 2
    assert clients[abs_client.code]["active"] == 1
    feed = view(client, operator, "ABS changes feed")
    assert {r[2] for r in feed["rows"]} == {first["id"], second["id"]}
    assert other.code not in str(feed)
