"""An operator's retry or cancel of jobs, by ids or by filter: done, audited, and told.

The console, the admin API (on an ORM session) and `writegate jobs retry|cancel` (on a plain
connection) all act through `act` and word each outcome with `describe`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from writegate.core import audit_log
from writegate.core.jobs import operator
from writegate.core.jobs.criteria import JobFilter
from writegate.core.jobs.operator import Outcome

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

ACTIONS = ("retry", "cancel")


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


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who acts (the audit log's actor), and the tenant acted on (None: every one)."""

    name: str
    scope: str | None


def act(
    conn: Connection | Session,
    action: str,
    actor: Actor,
    now: datetime,
    *,
    ids: Sequence[str] | None = None,
    job_filter: JobFilter | None = None,
    raw_filter: dict[str, str] | None = None,
    wake: Callable[[], None] | None = None,
) -> tuple[list[Outcome], int]:
    """Retry or cancel by ids or by filter in the caller's transaction, with its audit entry;
    the workers are told of the jobs it made claimable (`operator.announce`)."""
    if job_filter is not None:
        ids = operator.matching_ids(conn, job_filter)
    targets = list(dict.fromkeys(ids or []))
    run = operator.retry_many if action == "retry" else operator.cancel_many
    outcomes = run(conn, targets, tenant=actor.scope, now=now)
    operator.announce(conn, outcomes, wake)
    refused = [
        {"id": o.id, "reason": o.reason, "status": o.status, "holder": o.holder}
        for o in outcomes
        if not o.ok
    ]
    # The first 100 refusals with their reasons; the count of them all.
    detail: dict[str, Any] = {
        "requested": len(targets),
        "refused": refused[:100],
        "refused_count": len(refused),
    }
    if raw_filter is not None:
        detail["filter"] = raw_filter
    # An entry is seen by the operators of the tenant whose jobs it names, never by another's.
    tenants = operator.tenants_of(conn, [o.id for o in outcomes if o.reason != "not_found"])
    audit_id = audit_log.record(
        conn,
        at=now,
        actor=actor.name,
        tenant=actor.scope or (tenants.pop() if len(tenants) == 1 else audit_log.ALL_TENANTS),
        action=f"bulk_{action}" if job_filter is not None or len(targets) > 1 else action,
        job_ids=[o.id for o in outcomes if o.ok],
        detail=detail,
        also_names=[o.id for o in outcomes if not o.ok and o.reason != "not_found"],
    )
    return outcomes, audit_id


def report(action: str, outcomes: Sequence[Outcome], audit_id: int) -> dict[str, Any]:
    """What an action did, as data: counts, one result (with its line) per job, the audit id."""
    refused = sum(not o.ok for o in outcomes)
    return {
        "action": action,
        "done": len(outcomes) - refused,
        "refused": refused,
        "results": [{**dataclasses.asdict(o), "message": describe(action, o)} for o in outcomes],
        "audit_id": audit_id,
    }
