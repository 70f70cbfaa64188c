"""What the console and the admin API do, as plain data: both call these."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from writegate.console.access import Denied, Operator
from writegate.console.filters import Query, encode_cursor
from writegate.console.masking import masked
from writegate.core import audit_log
from writegate.core.console_view import Link
from writegate.core.jobs import ACTIVE, Job, JobRow
from writegate.core.jobs import operator as jobs_admin
from writegate.core.jobs.operator import JobFilter, Outcome
from writegate.core.services import Services
from writegate.core.webmodule import WebModule

ACTIONS = ("retry", "cancel")


def iso(at: datetime | None) -> str | None:
    """A naive UTC datetime as ISO 8601 with a Z."""
    return at.isoformat(timespec="seconds") + "Z" if at is not None else None


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


def summary(row: JobRow | Job) -> dict[str, Any]:
    """A job as a list shows it."""
    error = (row.error or "").strip().splitlines()
    return {
        "id": row.id,
        "kind": row.kind,
        "tenant": row.tenant,
        "status": str(row.status),
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "exclusive_key": row.exclusive_key,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "finished_at": iso(row.finished_at),
        "error": error[-1][:300] if error else None,
        "progress": progress_bar(row.progress),
    }


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
        job = services.jobs.get(s, job_id, tenant=op.scope) if len(job_id) <= 36 else None
        if job is None:
            raise Denied(404, "not_found", f"no job {job_id}")
        entries = audit_log.for_job(s, job.id, limit=50)
        holder = None
        if job.exclusive_key and job.status.value not in ACTIVE:
            holder = services.jobs.active_holder(s, job.exclusive_key)
    return {
        **summary(job),
        "principal": job.principal,
        "payload": masked(job.payload),
        "result": masked(job.result),
        "error": job.error,
        "progress_raw": masked(job.progress),
        "checkpoint": masked(job.checkpoint),
        "run_after": iso(job.run_after),
        "started_at": iso(job.started_at),
        "lease_owner": job.lease_owner,
        "lease_expires_at": iso(job.lease_expires_at),
        "timeout_at": iso(job.timeout_at),
        "idempotency_key": job.idempotency_key,
        "key_holder": holder,
        "links": _links(modules, job),
        "audit": [audit_entry(e) for e in entries],
        "can_retry": job.status.value in ("failed", "cancelled"),
        "can_cancel": job.status.value in ACTIVE,
    }


def audit_entry(row: audit_log.AuditRow) -> dict[str, Any]:
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


def describe(action: str, o: Outcome) -> str:
    """One line saying what an action did to a job, or why it was refused."""
    if o.ok:
        return f"job {o.id}: {'queued again' if action == 'retry' else 'cancelled'}"
    if o.reason == "not_found":
        return f"job {o.id}: no such job"
    if o.reason == "key_held":
        return f"job {o.id} cannot be retried: its exclusive key is held by active job {o.holder}"
    if action == "retry" and o.reason == "active":
        return (
            f"job {o.id} is {o.status}, still active: only failed or cancelled jobs can be retried"
        )
    if action == "retry":
        return (
            f"job {o.id} already {o.status} (final): only failed or cancelled jobs can be retried"
        )
    return f"job {o.id} is already {o.status} (final): only queued or running jobs can be cancelled"


def act(
    services: Services,
    op: Operator,
    action: str,
    ids: Sequence[str] | None = None,
    job_filter: JobFilter | None = None,
    raw_filter: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Retry or cancel jobs by id or by filter; recorded in the audit log with its outcome."""
    now = services.clock.now()
    scope = op.scope
    with services.db.write() as s:
        if job_filter is not None:
            f = dataclasses.replace(job_filter, tenant=op.tenant_filter(job_filter.tenant))
            ids = jobs_admin.matching_ids(s, f)
        targets = list(dict.fromkeys(ids or []))
        run = jobs_admin.retry_many if action == "retry" else jobs_admin.cancel_many
        outcomes = run(s, targets, tenant=scope, now=now)
        done = [o.id for o in outcomes if o.ok]
        refused = [
            {"id": o.id, "reason": o.reason, "status": o.status, "holder": o.holder}
            for o in outcomes
            if not o.ok
        ]
        detail: dict[str, Any] = {"requested": len(targets), "refused": refused[:100]}
        if raw_filter is not None:
            detail["filter"] = raw_filter
        name = f"bulk_{action}" if job_filter is not None or len(targets) > 1 else action
        entry = audit_log.record(
            s,
            at=now,
            actor=op.name,
            tenant=op.principal.tenant,
            action=name,
            job_ids=done,
            detail=detail,
        )
        audit_id = entry.id
    return {
        "action": action,
        "done": len(done),
        "refused": len(refused),
        "results": [
            {
                "id": o.id,
                "ok": o.ok,
                "status": o.status,
                "reason": o.reason,
                "holder": o.holder,
                "message": describe(action, o),
            }
            for o in outcomes
        ],
        "audit_id": audit_id,
    }


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
