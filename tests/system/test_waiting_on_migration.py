"""Migration core_0007 parks the queued jobs of a live database that wait on an active job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.harness import unmigrated
from writegate.core.migrations import upgrade

_INSERT = text(
    "INSERT INTO jobs (id, kind, tenant, payload, status, attempts, max_attempts, run_after,"
    " created_at, updated_at, after_id) VALUES (:id, 'mig.k', 't', '{}', :status, 0, 5,"
    " '2026-12-01 10:00:00', '2026-12-01 10:00:00', '2026-12-01 10:00:00', :after)"
)


def test_upgrade_parks_jobs_behind_an_active_job_and_only_those(tmp_path: Any) -> None:
    with unmigrated(str(tmp_path)) as (svc, dirs):
        upgrade(svc.db, dirs, "core_0006")
        rows = [
            ("dep-queued", "queued", None),
            ("dep-running", "running", None),
            ("dep-done", "succeeded", None),
            ("after-queued", "queued", "dep-queued"),
            ("after-running", "queued", "dep-running"),
            ("after-done", "queued", "dep-done"),
            ("after-gone", "queued", "no-such-job"),
        ]
        with svc.db.write() as s:
            for job_id, status, after in rows:
                s.execute(_INSERT, {"id": job_id, "status": status, "after": after})
        upgrade(svc.db, dirs)
        with svc.db.read() as s:
            waiting = dict(s.execute(text("SELECT id, waiting_on FROM jobs")).all())
        assert waiting == {
            "dep-queued": None,
            "dep-running": None,
            "dep-done": None,
            "after-queued": "dep-queued",
            "after-running": "dep-running",
            "after-done": None,
            "after-gone": None,
        }
        claimed = {j.id for j in svc.jobs.claim("w", ["mig.k"], 10)}
        assert claimed == {"dep-queued", "after-done", "after-gone"}
