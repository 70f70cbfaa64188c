"""The operator console in a real headless Chromium: sign in, find, retry, cancel, watch, docs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import PASSWORD, sign_in
from tests.browser.consolekit import GATE_KIND
from tests.harness import Server, uid, wait_for
from writegate.modules.bokamera.simulator import RunningSimulator, build_state

pytestmark = pytest.mark.browser


def principal(server: Server, roles: list[str], tenant: str | None = None) -> tuple[str, str]:
    """A principal with a password; returns (name, api key)."""
    services = server.services
    with services.db.write() as s:
        p, key = services.auth.create(
            s,
            name=uid("op-"),
            tenant=tenant or uid("tenant-"),
            roles=roles,
            password=PASSWORD,
        )
    return p.name, key


def enqueue(server: Server, kind: str, tenant: str, payload: Any, **kw: Any) -> str:
    """A job, as a module would enqueue it."""
    services = server.services
    with services.db.write() as s:
        return services.jobs.enqueue(s, kind=kind, payload=payload, tenant=tenant, **kw).id


def status(server: Server, job_id: str) -> str:
    """A job's stored status."""
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, job_id)
        assert job is not None
        return job.status.value


def test_superadmin_finds_a_failed_job_retries_it_and_cancels_a_queued_one(
    page: Any, console_server: Server, tmp_path: Path
) -> None:
    """Filter to the failed job, retry it (after the cause is fixed), see it succeed; cancel."""
    srv = console_server
    name, _ = principal(srv, ["superadmin"])
    tenant = uid("tenant-")
    gate = tmp_path / "gate"
    failing = enqueue(srv, GATE_KIND, tenant, {"gate": str(gate)}, max_attempts=2)
    waiting = enqueue(srv, "console.idle", tenant, {"n": 1})
    wait_for(lambda: status(srv, failing) == "failed", timeout=30)

    sign_in(page, name)
    page.screenshot(path=tmp_path / "overview.png", full_page=True)
    assert page.locator(f"#kinds tr[data-kind='{GATE_KIND}']").count() == 1
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=tmp_path / "overview-dark.png", full_page=True)
    page.emulate_media(color_scheme="light")
    page.click("text=Jobs")
    page.select_option("select[name=status]", "failed")
    page.select_option("select[name=kind]", GATE_KIND)
    page.fill("input[name=tenant]", tenant)
    page.click("#filters button[type=submit]")
    row = page.locator(f"tr[data-id='{failing}']")
    row.wait_for()
    assert page.locator("#jobs-table tr[data-id]").count() == 1
    page.screenshot(path=tmp_path / "jobs-filtered.png", full_page=True)
    row.locator("a").click()
    page.wait_for_url(f"**/console/jobs/{failing}")
    assert "gate gate is closed" in page.inner_text("#error")

    gate.write_text("open")
    page.click("#retry")
    page.wait_for_selector("#msg")
    assert "queued again" in page.inner_text("#msg")
    page.wait_for_function(
        "document.querySelector('#job-status').textContent.trim() === 'succeeded'",
        timeout=30_000,
    )
    page.screenshot(path=tmp_path / "job-succeeded.png", full_page=True)

    page.goto(f"/console/jobs/{waiting}")
    page.click("#cancel")
    page.wait_for_selector("#msg")
    assert page.inner_text("#job-status").strip() == "cancelled"
    assert status(srv, waiting) == "cancelled"
    page.goto("/console/audit")
    audit = page.inner_text("table.audit")
    assert failing in audit
    assert waiting in audit
    page.screenshot(path=tmp_path / "audit.png", full_page=True)


def test_bokamera_sync_progress_moves(page: Any, console_server: Server, tmp_path: Path) -> None:
    """A BokaMera sync against the bundled Vaka simulator: the job page's bar counts up live."""
    srv = console_server
    sim = RunningSimulator(build_state(400, latency=0.25, max_page_size=10))
    try:
        company = str(uuid.uuid4())
        _, key = principal(srv, ["bookingsupplier-administrator-write"], tenant=company)
        name, _ = principal(srv, ["operator"], tenant=company)
        with httpx.Client(base_url=srv.url, headers={"x-api-key": key}, timeout=30) as c:
            r = c.post(
                "/codelock/axema/settings",
                json={"ApiEndpoint": sim.url, "Username": "vaka", "Password": "vaka"},
            )
            assert r.status_code == 200, r.text
            r = c.post("/codelock/axema/usersync", json={})
            assert r.status_code == 200, r.text
            sync_id = r.json()["Id"]

        sign_in(page, name)
        page.goto(f"/console/jobs/{sync_id}")
        bar = "#progress .bar"
        page.wait_for_selector(bar)

        def found() -> int:
            return int(page.get_attribute(bar, "aria-valuenow") or 0)

        first = found()
        page.screenshot(path=tmp_path / "sync-running.png", full_page=True)
        page.wait_for_function(
            f"Number(document.querySelector('{bar}').getAttribute('aria-valuenow')) > {first}",
            timeout=30_000,
        )
        assert found() > first
        page.wait_for_function(
            "document.querySelector('#job-status').textContent.trim() === 'succeeded'",
            timeout=60_000,
        )
        assert found() == 400
        page.screenshot(path=tmp_path / "sync-done.png", full_page=True)
        page.click("summary:has-text('API views')")
        page.click("text=BokaMera syncs per company")
        row = page.locator("tr", has_text=company)
        row.wait_for()
        assert row.locator(".bar").get_attribute("aria-valuenow") == "400"
        assert "found 400, created 400" in row.inner_text()
        page.screenshot(path=tmp_path / "bokamera-syncs.png", full_page=True)
        page.click("summary:has-text('API views')")
        page.click("text=BokaMera Vaka settings")
        settings = page.locator("tr", has_text=company)
        settings.wait_for()
        assert "***" in settings.inner_text()
        page.screenshot(path=tmp_path / "bokamera-settings.png", full_page=True)
    finally:
        sim.stop()


def test_operator_cannot_act_and_sees_only_its_tenant(
    page: Any, console_server: Server, tmp_path: Path
) -> None:
    """An operator bound to a tenant: no action buttons, other tenants' jobs are invisible."""
    srv = console_server
    mine, theirs = uid("tenant-"), uid("tenant-")
    name, _ = principal(srv, ["operator"], tenant=mine)
    my_job = enqueue(srv, "console.idle", mine, {"n": 1})
    their_job = enqueue(srv, "console.idle", theirs, {"n": 2})

    sign_in(page, name)
    page.goto("/console/jobs")
    page.locator(f"tr[data-id='{my_job}']").wait_for()
    assert page.locator(f"tr[data-id='{their_job}']").count() == 0
    assert page.locator("input[name=tenant]").count() == 0
    assert "Retry all matching" not in page.content()
    page.screenshot(path=tmp_path / "operator-jobs.png", full_page=True)
    page.goto(f"/console/jobs/{my_job}")
    assert page.locator("#cancel").count() == 0
    assert "operator (read only)" in page.inner_text("#who")
    response = page.goto(f"/console/jobs/{their_job}")
    assert response.status == 404
    page.screenshot(path=tmp_path / "operator-other-tenant.png", full_page=True)
    response = page.goto(f"/console/jobs?tenant={theirs}")
    assert response.status == 403


def test_regression_the_list_refresh_took_the_keyboard_focus(
    page: Any, console_server: Server
) -> None:
    """The jobs list refreshes every 3 s by replacing its rows: a keyboard user's focus on a
    row's link went back to the page's start each time. It waits while focus is in the list,
    and goes on once focus leaves it."""
    srv = console_server
    tenant = uid("tenant-")
    name, _ = principal(srv, ["operator"], tenant=tenant)
    job = enqueue(srv, "console.idle", tenant, {"n": 1})
    sign_in(page, name)
    page.goto("/console/jobs")
    link = page.locator(f"tr[data-id='{job}'] a")
    link.focus()
    page.wait_for_timeout(7_000)  # two refreshes' time
    assert page.evaluate("document.activeElement.textContent") == job
    newer = enqueue(srv, "console.idle", tenant, {"n": 2})
    page.evaluate("document.activeElement.blur()")
    page.locator(f"tr[data-id='{newer}']").wait_for(timeout=15_000)


def test_docs_load_offline(page: Any, tmp_path: Path) -> None:
    """/docs renders every operation from bundled assets (other hosts are blocked)."""
    page.goto("/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() > 10
    assert "/codelock/axema/usersync" in page.inner_text("body")
    page.screenshot(path=tmp_path / "docs.png")
    page.goto("/redoc")
    page.wait_for_selector("[data-section-id]", timeout=30_000)
    page.screenshot(path=tmp_path / "redoc.png")
