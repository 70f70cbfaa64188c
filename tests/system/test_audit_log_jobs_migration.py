"""Migration core_0011 indexes the jobs that the audit entries written before it name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.harness import unmigrated
from writegate.core import audit_log
from writegate.core.migrations import upgrade

_INSERT = text(
    "INSERT INTO audit_log (at, actor, tenant, action, job_ids, detail)"
    " VALUES ('2026-12-01 10:00:00', 'ann', 't', :action, :job_ids, '{}')"
)


def test_upgrade_finds_each_earlier_entry_by_the_jobs_it_names(tmp_path: Any) -> None:
    with unmigrated(str(tmp_path)) as (svc, dirs):
        upgrade(svc.db, dirs, "core_0010")
        with svc.db.write() as s:
            for action, job_ids in (
                ("retry", '["job-a"]'),
                ("bulk_cancel", '["job-a", "job-b", "job-a"]'),
                ("sign_in", "[]"),
            ):
                s.execute(_INSERT, {"action": action, "job_ids": job_ids})
        upgrade(svc.db, dirs)
        with svc.db.read() as s:
            a = [r.action for r in audit_log.for_job(s, "job-a", tenant=None)]
            b = [r.action for r in audit_log.for_job(s, "job-b", tenant="t")]
            other = audit_log.for_job(s, "job-b", tenant="u")
        assert (a, b, other) == (["bulk_cancel", "retry"], ["bulk_cancel"], [])
