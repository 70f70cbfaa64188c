"""Ikonomikal's console view: live sessions and process tokens per subscription, no secrets."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.ikonomikal.conftest import Iko
from tests.console.views import rows_by_first, view


def test_sessions_and_tokens_counted_never_shown(
    client: httpx.Client, iko: Iko, make_principal: Any
) -> None:
    """An operator of the subscription sees 1 live session and 2 live tokens, no token value."""
    iko.must_token(1)
    iko.must_token(2)
    subs = iko.login_answer["subsID"]
    _, operator = make_principal(tenant=subs, roles=["operator"])
    table = view(client, operator, "Ikonomikal sessions and process tokens")
    rows = rows_by_first(table)
    assert set(rows) == {subs}
    assert rows[subs]["live sessions"] == 1
    assert rows[subs]["live process tokens"] == 2
    assert rows[subs]["next token expiry"].endswith("Z")
    assert iko.login_answer["sessID"] not in str(table)
    _, stranger = make_principal(roles=["operator"])
    assert view(client, stranger, "Ikonomikal sessions and process tokens")["rows"] == []
