"""Every statement about the jobs table, built once per database, by name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    Table,
    any_,
    bindparam,
    cast,
    exists,
    func,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ColumnElement, Select, Update

from writegate.core.db import BatchInsert, DriverStatement, InValues, ValueList
from writegate.core.jobs.model import JobRow
from writegate.core.jobs.operator import BY_ID, RELEASE_WAITING
from writegate.core.jobs.status import ACTIVE, Status
from writegate.core.jobs.table import ACTIVE_KEYED, CLAIMABLE, JOBS

jobs: Table = JOBS
c = jobs.c

#: the columns a new job's INSERT gives, in the order of `Enqueue`'s rows
NEW_COLUMNS = (
    "id",
    "kind",
    "tenant",
    "principal",
    "payload",
    "status",
    "attempts",
    "max_attempts",
    "run_after",
    "created_at",
    "updated_at",
    "exclusive_key",
    "idempotency_key",
    "after_id",
    "waiting_on",
    "trace_context",
    # a job handed to this process's worker as it is written (`Handoff`): its attempt
    "lease_owner",
    "lease_expires_at",
    "timeout_at",
    "started_at",
)


def _fence() -> list[ColumnElement[bool]]:
    # The attempt number is part of the fence: a worker that re-claimed its own timed-out
    # job must not let the stale attempt commit over the live one.
    return [
        c.id == bindparam("f_id"),
        c.status == Status.RUNNING.value,
        c.lease_owner == bindparam("f_owner"),
        c.attempts == bindparam("f_attempts"),
    ]


def _held(cols: Any) -> list[ColumnElement[bool]]:
    return [
        InValues(cols.id, "b_ids"),
        cols.status == Status.RUNNING.value,
        cols.lease_owner == bindparam("b_owner"),
        or_(cols.timeout_at.is_(None), cols.timeout_at > bindparam("b_now")),
    ]


# The claim's picks. Each kind is its own range of `ix_jobs_claim (kind, run_after,
# created_at)`: its first `limit` due jobs, then the first `limit` of all the group's kinds.
# One scan of all due jobs filtered by kind read every queued job of the other kinds first,
# and each worker's second group (threaded kinds under a backlog of short ones, or the
# reverse) mostly finds none: 3 ms a claim on PostgreSQL behind 24,000 jobs. A job waiting
# on another (`waiting_on`) is not in the index at all: a claim never passes over the jobs
# parked behind a long or failing dependency.


def _in_kind(group: str, kind: ColumnElement[Any], rows: Any) -> Select[Any]:
    """The first due jobs of one kind, up to the group's limit."""
    return (
        select(rows.c.id, rows.c.run_after, rows.c.created_at)
        .where(
            text(CLAIMABLE),
            rows.c.kind == kind,
            rows.c.run_after <= bindparam("c_now", type_=c.run_after.type),
        )
        .order_by(rows.c.run_after, rows.c.created_at)
        .limit(_limit(group))
    )


def _limit(group: str) -> Any:
    return bindparam(f"c_limit_{group}", type_=Integer)


def _kinds(group: str) -> Any:
    return bindparam(f"c_kinds_{group}", type_=ValueList(c.kind.type))


def _pick_pg(group: str) -> Select[Any]:
    """A group's ids: `unnest` of its kinds, a LATERAL range each, SKIP LOCKED inside it.

    A concurrent claim's rows are passed over within each range; rows locked beyond the
    group's limit are let go at the statement's end, still queued.
    """
    k = func.unnest(_kinds(group)).table_valued("kind").render_derived(name="k")
    ranges = (
        _in_kind(group, k.c.kind, jobs)
        .with_for_update(of=jobs, skip_locked=True)
        .lateral(f"in_kind_{group}")
    )
    return (
        select(ranges.c.id)
        .select_from(k.join(ranges, true()))
        .order_by(ranges.c.run_after, ranges.c.created_at)
        .limit(_limit(group))
    )


def _pick_sqlite(group: str) -> Select[Any]:
    """A group's ids: `json_each` of its kinds and a correlated IN per kind (no LATERAL).

    Its writer is alone (BEGIN IMMEDIATE): nothing is locked.
    """
    k = func.json_each(_kinds(group)).table_valued("value").alias("k")
    row, ranged = jobs.alias(f"claim_{group}"), jobs.alias(f"in_kind_{group}")
    in_range = _in_kind(group, k.c.value, ranged).with_only_columns(ranged.c.id).correlate(k)
    return (
        select(row.c.id)
        .select_from(k.join(row, row.c.id.in_(in_range.scalar_subquery())))
        .order_by(row.c.run_after, row.c.created_at)
        .limit(_limit(group))
    )


class JobStatements:
    """The jobs table's statements for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        postgres = dialect.name == "postgresql"
        # A taken exclusive or idempotency key skips the row instead of failing the
        # statement: no savepoint, and a whole batch of keyed jobs is one multi-row INSERT.
        self.insert = BatchInsert(dialect, jobs, NEW_COLUMNS, "ON CONFLICT DO NOTHING", key="id")
        #: (key, id, status) of the active jobs holding any of the keys `h_keys`
        self.holders = DriverStatement(
            dialect,
            select(c.exclusive_key, c.id, c.status).where(
                InValues(c.exclusive_key, "h_keys"), text(ACTIVE_KEYED)
            ),
        )
        #: ids among `e_ids` that exist
        self.existing_ids = DriverStatement(dialect, select(c.id).where(InValues(c.id, "e_ids")))
        self.by_idempotency: Select[Any] = select(JobRow).where(
            c.tenant == bindparam("i_tenant"),
            c.kind == bindparam("i_kind"),
            c.idempotency_key == bindparam("i_key"),
        )
        #: the job `j_id` (every column)
        self.by_id = BY_ID
        #: the active job holding the key `h_key` (every column)
        self.active_job = select(*jobs.c).where(
            c.exclusive_key == bindparam("h_key"), text(ACTIVE_KEYED)
        )
        #: which of the jobs `d_ids` are active (a new job after one of them waits for it)
        self.active_of = DriverStatement(
            dialect,
            select(c.id).where(InValues(c.id, "d_ids"), or_(*(c.status == a for a in ACTIVE))),
        )
        self.release = DriverStatement(dialect, RELEASE_WAITING)
        #: the jobs final or gone that jobs still wait on: parked by a transaction that
        #: committed after the dependency's own release (PostgreSQL)
        dep = jobs.alias("dep")
        self.orphaned = (
            select(c.waiting_on)
            .where(
                text("waiting_on IS NOT NULL"),
                ~exists().where(dep.c.id == c.waiting_on, dep.c.status.in_(ACTIVE)).correlate(jobs),
            )
            .distinct()
        )
        self.claim = DriverStatement(dialect, self._claim(postgres), list(jobs.c))
        #: fenced by (id, running, owner, attempts); values given per call
        self.fenced: Update = update(jobs).where(*_fence())
        #: a running attempt's success, run once for many jobs (one parameter set each)
        self.complete = DriverStatement(dialect, self._complete(with_progress=False))
        #: the same, also storing the job's progress
        self.complete_progress = DriverStatement(dialect, self._complete(with_progress=True))
        self.heartbeat = self._heartbeat(postgres)
        #: which of the jobs `b_ids` this worker holds (`b_owner`, before their timeout)
        self.held = select(c.id).where(*_held(c))
        stalled = select(JobRow).where(
            c.status == Status.RUNNING.value, c.lease_expires_at < bindparam("s_now")
        )
        self.stalled = (stalled.with_for_update(skip_locked=True) if postgres else stalled).limit(
            500
        )

    @staticmethod
    def _claim(postgres: bool) -> Update:
        # Two picks, each its own kinds and limit (a worker's short kinds and its threaded
        # ones, each up to its own room), so a worker with both claims once, not twice.
        # On PostgreSQL each pick is a MATERIALIZED CTE: run exactly once. As an
        # `IN (sub-select)` the planner may re-run it per outer row (a nested-loop semi
        # join), and every run locks and returns other rows. Their ids come to the UPDATE as
        # one array (an InitPlan), so it finds its rows by the primary key in any plan: the
        # claim's plan is made once per connection (`engine.CLAIM_PLAN`), whatever the
        # table's size then, and a join could have been planned as a scan of `jobs`.
        # SQLite evaluates an uncorrelated IN list once.
        if postgres:
            a, b = (_pick_pg(g).cte(f"picked_{g}").prefix_with("MATERIALIZED") for g in "ab")
            picked = union_all(select(a.c.id), select(b.c.id)).subquery("picked")
            ids = select(func.array_agg(picked.c.id)).scalar_subquery()
            claimed = c.id == any_(cast(ids, ARRAY(c.id.type)))
        else:
            sa, sb = (_pick_sqlite(g).subquery(f"picked_{g}") for g in "ab")
            claimed = c.id.in_(union_all(select(sa.c.id), select(sb.c.id)))
        return (
            update(jobs)
            .where(claimed, c.status == Status.QUEUED.value)
            .values(
                status=Status.RUNNING.value,
                lease_owner=bindparam("c_owner"),
                lease_expires_at=bindparam("c_lease", type_=c.lease_expires_at.type),
                timeout_at=bindparam("c_timeout", type_=c.timeout_at.type),
                attempts=c.attempts + 1,
                started_at=bindparam("c_now", type_=c.started_at.type),
                updated_at=bindparam("c_now", type_=c.updated_at.type),
            )
            .returning(*jobs.c)
        )

    @staticmethod
    def _heartbeat(postgres: bool) -> Update:
        """Extend the leases of the jobs `b_ids` this worker holds; the ids extended."""
        beat = update(jobs).values(lease_expires_at=bindparam("b_lease")).returning(c.id)
        if not postgres:
            return beat.where(*_held(c))
        # A row that a transaction holds (a batch completing its jobs, a job's checkpoint)
        # is skipped, not waited for: waiting, in id order or any other, can deadlock with
        # a batch that locks its jobs in its own order. `held` tells skipped from lost.
        beat_rows = jobs.alias("beat")
        locked = (
            select(beat_rows.c.id)
            .where(*_held(beat_rows.c))
            .order_by(beat_rows.c.id)
            .with_for_update(skip_locked=True)
        )
        return beat.where(c.id.in_(locked))

    @staticmethod
    def _complete(*, with_progress: bool) -> Update:
        values: dict[str, Any] = {
            "status": Status.SUCCEEDED.value,
            "result": bindparam("c_result", type_=c.result.type),
            "error": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "finished_at": bindparam("c_now", type_=c.finished_at.type),
            "updated_at": bindparam("c_now", type_=c.updated_at.type),
        }
        if with_progress:
            values["progress"] = bindparam("c_progress", type_=c.progress.type)
        return update(jobs).where(*_fence()).values(values)


def fence(job_id: str, owner: str, attempts: int) -> dict[str, object]:
    """The parameters of `JobStatements.fenced` for one attempt."""
    return {"f_id": job_id, "f_owner": owner, "f_attempts": attempts}


def claim_params(
    owner: str,
    now: datetime,
    lease_seconds: float,
    timeout_seconds: float,
    groups: Sequence[tuple[Sequence[str], int]],
) -> dict[str, Any]:
    """The parameters of `JobStatements.claim`: up to two (kinds, limit) groups."""
    if not 1 <= len(groups) <= 2:
        raise ValueError(f"a claim takes one or two groups of kinds, not {len(groups)}")
    (kinds_a, limit_a), (kinds_b, limit_b) = [*groups, ((), 0)][:2]
    return {
        "c_now": now,
        "c_kinds_a": list(kinds_a),
        "c_limit_a": limit_a,
        "c_kinds_b": list(kinds_b),
        "c_limit_b": limit_b,
        "c_owner": owner,
        "c_lease": now + timedelta(seconds=lease_seconds),
        "c_timeout": now + timedelta(seconds=timeout_seconds),
    }
