"""BokaMera paths match in any letter case, as ServiceStack matches its routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.bokamera.conftest import SETTINGS, SYNC, wait_done


@pytest.mark.parametrize("spell", [str.upper, str.swapcase])
def test_regression_every_call_in_any_case(
    client: httpx.Client, vaka: Any, company: Any, spell: Callable[[str], str]
) -> None:
    """Settings, sync, status and customers on re-cased paths do what they do as documented."""
    sim = vaka(users=3)
    co = company(None)
    r = client.post(
        spell(SETTINGS),
        json={"ApiEndpoint": sim.url, "Username": "vaka", "Password": "vaka"},
        headers=co.headers,
    )
    assert r.status_code == 200, r.text
    r = client.post(spell(SYNC), json={}, headers=co.headers)
    assert r.status_code == 200, r.text
    sync_id = r.json()["Id"]
    assert wait_done(client, co, sync_id)["Status"] == 2
    # A GUID in another case is the same Id.
    r = client.get(spell(f"{SYNC}/{sync_id}") + ".JSON", headers=co.headers)
    assert (r.status_code, r.json()["Id"], r.json()["Status"]) == (200, sync_id, 2)
    r = client.get(spell("/customers"), headers=co.headers)
    assert (r.status_code, r.json()["Total"]) == (200, 3)


def test_regression_an_unknown_path_in_another_case_is_bokameras_not_found(
    client: httpx.Client,
) -> None:
    """An unknown path under a re-cased BokaMera prefix answers in ServiceStack's envelope."""
    r = client.get("/CODELOCK/AXEMA/NOPE")
    assert r.status_code == 404
    assert r.json()["ResponseStatus"]["ErrorCode"] == "NotFound"
