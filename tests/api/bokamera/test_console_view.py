"""BokaMera's console views: each company's latest sync with its progress; settings, no password."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.bokamera.conftest import start_sync, wait_done
from tests.console.views import rows_by_first, view


def test_sync_and_settings_views(
    client: httpx.Client, vaka: Any, company: Any, make_principal: Any
) -> None:
    """A finished sync shows its counts; settings show endpoint and user, never the password."""
    sim = vaka(25)
    mine = company(sim, password="vaka")
    other = company(sim)
    sync = start_sync(client, mine)
    wait_done(client, mine, sync["Id"])
    _, operator = make_principal(tenant=mine.id, roles=["operator"])
    syncs = rows_by_first(view(client, operator, "BokaMera syncs per company"))
    assert set(syncs) == {mine.id}
    row = syncs[mine.id]
    assert row["status"] == "succeeded"
    assert row["latest sync"]["label"] == sync["Id"]
    assert row["users"] == {
        "done": 25,
        "total": 25,
        "label": "found 25, created 25, updated 0, failed 0",
    }
    settings = view(client, operator, "BokaMera Vaka settings")
    assert [r[0] for r in settings["rows"]] == [mine.id]
    assert settings["rows"][0][3:5] == ["vaka", "***"]
    assert other.id not in str(settings)
    _, admin = make_principal(roles=["superadmin"])
    assert other.id in str(view(client, admin, "BokaMera Vaka settings"))
    detail = client.get(f"/admin/api/jobs/{sync['Id']}", headers={"x-api-key": admin}).json()
    assert detail["links"] == [
        {
            "label": f"sync {sync['Id']} (API view)",
            "href": f"/codelock/axema/usersync/{sync['Id']}",
        }
    ]
