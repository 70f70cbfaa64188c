"""jef-one's console view and job links: records by status, links to the jef-one API views."""

from __future__ import annotations

from typing import Any

import httpx

from tests.console.views import view


def test_records_by_status_and_job_links(
    client: httpx.Client, entity: Any, make_principal: Any
) -> None:
    """After an entity upsert, the view counts entities; the job links to the entity's view."""
    entity()
    _, admin = make_principal(roles=["superadmin"])
    table = view(client, admin, "jef-one records by status")
    counts = {(r[0], r[1]): r[2] for r in table["rows"]}
    assert counts[("entities", "active")] >= 1
    jobs = client.get(
        "/admin/api/jobs",
        params={"kind": "jef_one.upsert_entity", "limit": "1"},
        headers={"x-api-key": admin},
    ).json()["jobs"]
    assert jobs
    detail = client.get(f"/admin/api/jobs/{jobs[0]['id']}", headers={"x-api-key": admin}).json()
    hrefs = [link["href"] for link in detail["links"]]
    assert hrefs[0] == f"/jef-one-get-job-by-job-id?job_id={jobs[0]['id']}"
    assert any(h.startswith("/jef-one-get-entity-by-entity-number?entity_number=") for h in hrefs)
    r = client.get(hrefs[0])
    assert r.status_code == 200, r.text
    # an operator of another tenant sees no jef-one rows
    _, stranger = make_principal(roles=["operator"])
    assert view(client, stranger, "jef-one records by status")["rows"] == []
