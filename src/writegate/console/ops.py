"""What the console and the admin API do, as plain data: both call these."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row

from writegate.console.access import Denied, Operator
from writegate.core import audit_log
from writegate.core.console_view import Link
from writegate.core.jobs import ACTIVE, Job
from writegate.core.jobs import operator as jobs_admin
from writegate.core.jobs.actions import ACTIONS, Actor, report
from writegate.core.jobs.actions import act as act_on
from writegate.core.jobs.criteria import JobFilter, Query, encode_cursor
from writegate.core.jobs.detail import look_up
from writegate.core.jobs.listing import iso
from writegate.core.jobs.listing import summary as list_summary
from writegate.core.services import Services
from writegate.core.webmodule import WebModule

__all__ = ["ACTIONS", "act", "audit", "iso", "job_detail", "list_jobs", "overview", "summary"]


def progress_bar(progress: Any) -> dict[str, Any] | None:
    """A bar for a job's progress: done of total, or a running count when no total is known."""
    if not isinstance(progress, dict):
        return None
    nums = {k: v for k, v in progress.items() if isinstance(v, int) and not isinstance(v, bool)}
    if "total" in nums and "done" in nums:
        return {"done": nums["done"], "total": nums["total"], "label": ""}
    if nums:
        # e.g. a BokaMera sync: users found, created, updated (the Vaka total is not kept)
        done = nums.get("found", sum(nums.values()))
        label = ", ".join(f"{k} {v}" for k, v in nums.items())
        return {"done": done, "total": None, "label": label}
    return None


def summary(row: Any) -> dict[str, Any]:
    """A job as a list shows it, with its progress bar."""
    return {**list_summary(row), "progress": progress_bar(row.progress)}


def list_jobs(services: Services, op: Operator, query: Query) -> dict[str, Any]:
    """One page of jobs the operator may see."""
    f = dataclasses.replace(query.filter, tenant=op.tenant_filter(query.filter.tenant))
    with services.db.read() as s:
        rows, nxt = jobs_admin.page(s, f, limit=query.limit, after=query.cursor)
        jobs = [summary(r) for r in rows]
    return {"jobs": jobs, "next_cursor": encode_cursor(nxt), "filter": query.raw}


def _links(modules: Sequence[WebModule], job: Job) -> list[dict[str, str]]:
    out: list[Link] = []
    for m in modules:
        if m.console is not None:
            out += m.console.job_links(job)
    return [{"label": link.label, "href": link.href} for link in out]


def job_detail(
    services: Services, modules: Sequence[WebModule], op: Operator, job_id: str
) -> dict[str, Any]:
    """Everything about one job the operator may see (secrets masked); Denied 404 if not."""
    with services.db.read() as s:
        found = look_up(s, job_id, tenant=op.scope)
    if found is None:
        raise Denied(404, "not_found", f"no job {job_id}")
    job, fields, entries = found
    return {
        **fields,
        "progress": progress_bar(job.progress),
        "progress_raw": fields["progress"],
        "links": _links(modules, job),
        "audit": [audit_entry(e) for e in entries],
        "can_retry": job.status.value in ("failed", "cancelled"),
        "can_cancel": job.status.value in ACTIVE,
    }


def audit_entry(row: Row[Any]) -> dict[str, Any]:
    """An audit log entry as data."""
    return {
        "id": row.id,
        "at": iso(row.at),
        "actor": row.actor,
        "tenant": row.tenant,
        "action": row.action,
        "job_ids": list(row.job_ids or []),
        "detail": row.detail or {},
    }


def audit(
    services: Services, op: Operator, *, limit: int = 100, before: int | None = None
) -> list[dict[str, Any]]:
    """Recent audit entries the operator may see."""
    with services.db.read() as s:
        rows = audit_log.recent(s, tenant=op.scope, limit=limit, before=before)
        return [audit_entry(r) for r in rows]


def act(
    services: Services,
    op: Operator,
    action: str,
    ids: Sequence[str] | None = None,
    job_filter: JobFilter | None = None,
    raw_filter: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Retry or cancel jobs by id or by filter; recorded in the audit log with its outcome."""
    if job_filter is not None:
        job_filter = dataclasses.replace(job_filter, tenant=op.tenant_filter(job_filter.tenant))
    actor = Actor(op.name, op.scope)
    with services.db.write() as s:
        outcomes, audit_id = act_on(
            s,
            action,
            actor,
            services.clock.now(),
            ids=ids,
            job_filter=job_filter,
            raw_filter=raw_filter,
            wake=services.wakeup.set,
        )
    return report(action, outcomes, audit_id)


def overview(services: Services, op: Operator, modules: Sequence[WebModule]) -> dict[str, Any]:
    """Per kind counts, oldest queued age, failures and throughput, workers, the database."""
    now = services.clock.now()
    scope = op.scope
    with services.db.read() as s:
        counts = jobs_admin.counts_by_kind(s, scope)
        oldest = jobs_admin.oldest_queued(s, scope)
        failures = jobs_admin.failures_since(s, scope, now - timedelta(hours=1))
        per_minute = jobs_admin.finished_per_minute(s, scope, now)
        workers = jobs_admin.workers_seen(s, scope)
    kinds = sorted(set(counts) | set(services.registry.kinds()))
    lease = timedelta(seconds=services.jobs.lease_seconds)
    return {
        "now": iso(now),
        "kinds": [
            {
                "kind": k,
                "counts": counts.get(k, {}),
                "oldest_queued_seconds": (
                    int((now - oldest[k]).total_seconds()) if k in oldest else None
                ),
                "failed_last_hour": failures.get(k, 0),
            }
            for k in kinds
        ],
        "throughput_per_minute": per_minute,
        "finished_last_hour": sum(sum(v) for v in per_minute.values()),
        "workers": [
            {
                "id": w.id,
                "current_jobs": w.jobs,
                "last_heartbeat": iso(w.lease_expires_at - lease) if w.lease_expires_at else None,
                "concurrency": None,
            }
            for w in workers
        ],
        "workers_note": (
            "workers are seen through the leases of their running jobs: an idle worker, and "
            "a worker's configured concurrency, are not shown"
        ),
        "database": {
            "dialect": services.db.engine.dialect.name,
            "url": services.db.engine.url.render_as_string(hide_password=True),
        },
        "modules": [m.name for m in modules],
    }
