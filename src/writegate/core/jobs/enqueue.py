"""Adding jobs: many in the caller's transaction (the one entry), one, or one in its own commit."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from writegate.core.db import after_commit
from writegate.core.exceptions import ExclusiveJobExists
from writegate.core.jobs.job import Job
from writegate.core.jobs.model import JobRow, NewJob, Status, new_job_id
from writegate.core.jobs.sql import NEW_COLUMNS
from writegate.core.jobs.store import Handoff, JobStore
from writegate.core.observability import metrics, tracing
from writegate.core.observability.context import job_origin

#: times a row whose key was freed after its INSERT skipped it is inserted again
_FREED_RETRIES = 3


class Enqueue(JobStore):
    """Adding jobs."""

    def enqueue_many(
        self, session: Session | Connection, jobs: Sequence[NewJob]
    ) -> list[Job | ExclusiveJobExists]:
        """Add jobs in the caller's transaction with one INSERT; refusals are returned.

        A job whose exclusive key is held by an active job (or by an earlier job of the same
        call) is not written: its place holds the `ExclusiveJobExists`, and the transaction
        stays usable. A job whose idempotency key was used before gives the earlier job
        (`created` False). Any other failure (a duplicate id) raises.
        """
        if not jobs:
            return []
        now = self.clock.now()
        rows = [self._values(spec, now) for spec in jobs]
        self._park(session, rows)
        handoff = self.handoff if isinstance(session, Session) else None
        handed = self._hand_off(handoff, rows, now) if handoff is not None else set()
        spans = tracing.start_enqueue_spans(rows) if tracing.enabled() else None
        written = self._insert(session, rows)
        out: list[Job | ExclusiveJobExists | None] = [
            Job.from_mapping(v) if v["id"] in written else None for v in rows
        ]
        if len(written) < len(rows):
            written |= self._refusals(session, rows, out)
        if spans:
            tracing.end_enqueue_spans(spans, written)
        kinds = [v["kind"] for v in rows if v["id"] in written]
        if kinds and isinstance(session, Session):
            # On PostgreSQL the jobs table's statement trigger also sends a NOTIFY (for the
            # workers of other processes), delivered at COMMIT.
            after_commit(session, functools.partial(metrics.jobs_enqueued, kinds))
            if written - handed:
                after_commit(session, self.wake)
            if handoff is not None and written & handed:
                taken = [j for j in out if isinstance(j, Job) and j.id in handed]
                after_commit(session, functools.partial(handoff.take, taken))
        elif kinds:  # on a `Database.statement()` connection: committed already
            metrics.jobs_enqueued(kinds)
        return out  # type: ignore[return-value]

    def enqueue(self, session: Session, **spec: Any) -> Job:
        """Add one job (`NewJob`'s fields) in the caller's transaction; a held key raises."""
        outcome = self.enqueue_many(session, [NewJob(**spec)])[0]
        if isinstance(outcome, ExclusiveJobExists):
            raise outcome
        return outcome

    def defer(self, **spec: Any) -> Job:
        """Add one job in a durable commit of its own (on PostgreSQL one statement, no BEGIN).

        For a job that goes with no other write, like Celery's `delay()`; use `enqueue` to
        commit a job together with business writes. A held exclusive key raises
        `ExclusiveJobExists` and writes nothing.
        """
        with self.db.statement() as conn:
            outcome = self.enqueue_many(conn, [NewJob(**spec)])[0]
        if isinstance(outcome, ExclusiveJobExists):
            raise outcome
        self.wake()
        return outcome

    def _hand_off(self, handoff: Handoff, rows: list[dict[str, Any]], now: datetime) -> set[str]:
        """Write the rows this process's worker has room for as its running attempt; their ids.

        It starts them once they are committed: no claim, no wake-up. A job that must wait
        (for a later time, for another job) is left queued, as is every job while the
        worker has a backlog (its last claim filled its room): new jobs do not pass queued
        ones.
        """
        room: dict[str, int] = {}
        handed: set[str] = set()
        lease = now + timedelta(seconds=self.lease_seconds)
        timeout = now + timedelta(seconds=self.timeout_seconds)
        for values in rows:
            if values["waiting_on"] is not None or values["run_after"] > now:
                continue
            kind = values["kind"]
            left = room[kind] if kind in room else handoff.room(kind)
            room[kind] = left - 1
            if left <= 0:
                continue
            values.update(
                status=Status.RUNNING.value,
                attempts=1,
                lease_owner=handoff.worker_id,
                lease_expires_at=lease,
                timeout_at=timeout,
                started_at=now,
            )
            handed.add(values["id"])
        return handed

    def _park(self, on: Session | Connection, rows: list[dict[str, Any]]) -> None:
        """Set `waiting_on` of each row whose after_id is active (or new in this call).

        On PostgreSQL the dependency may become final while this transaction is open; its
        release does not see this row then, and the reaper's `release_orphans` does.
        """
        after = {v["after_id"] for v in rows if v["after_id"] is not None}
        if not after:
            return
        active = set(self.sql.active_of.scalars(on, {"d_ids": sorted(after)}))
        active.update(v["id"] for v in rows)
        for values in rows:
            if values["after_id"] in active:
                values["waiting_on"] = values["after_id"]

    def _insert(self, on: Session | Connection, rows: list[dict[str, Any]]) -> set[str]:
        """INSERT the rows, skipping each whose key is taken; the ids written."""
        # Keyed rows in key order: two batches inserting the same keys then lock them in one
        # order (in queue order they deadlocked on PostgreSQL). Stable: of two rows with one
        # key, the earlier still wins.
        ordered = sorted(rows, key=lambda v: v["exclusive_key"] or "")
        return {r[0] for r in self.sql.insert.execute(on, [_row(v) for v in ordered])}

    def _refusals(
        self,
        on: Session | Connection,
        rows: list[dict[str, Any]],
        out: list[Job | ExclusiveJobExists | None],
    ) -> set[str]:
        """Fill in why each unwritten row was skipped: a held key or a used idempotency key.

        A row whose key's holder became final after the INSERT skipped it (PostgreSQL: it
        committed meanwhile) is inserted again, as its key is free now; the ids so written.
        """
        again = self._look(on, rows, out, [i for i, o in enumerate(out) if o is None])
        written: set[str] = set()
        for _ in range(_FREED_RETRIES):
            if not again:
                break
            more = self._insert(on, [rows[i] for i in again])
            written |= more
            for i in again:
                if rows[i]["id"] in more:
                    out[i] = Job.from_mapping(rows[i])
            again = self._look(on, rows, out, [i for i in again if out[i] is None])
        for i in again:  # freed and taken again each time: a busy key, answered as held
            out[i] = ExclusiveJobExists(rows[i]["exclusive_key"], None)
        return written

    def _look(
        self,
        on: Session | Connection,
        rows: list[dict[str, Any]],
        out: list[Job | ExclusiveJobExists | None],
        skipped: list[int],
    ) -> list[int]:
        """Set the outcome of each skipped row whose key is held or idempotency key used;
        the rows whose key was freed since their INSERT."""
        keys = [rows[i]["exclusive_key"] for i in skipped if rows[i]["exclusive_key"] is not None]
        rows_held = self.sql.holders.fetch(on, {"h_keys": keys}) if keys else []
        holders = {key: (job_id, status) for key, job_id, status in rows_held}
        freed = []
        for i in skipped:
            values = rows[i]
            key = values["exclusive_key"]
            if key in holders and holders[key][0] != values["id"]:
                out[i] = ExclusiveJobExists(key, *holders[key])
                continue
            earlier = self._by_idempotency(on, values)
            if earlier is not None:
                out[i] = earlier
            elif key is not None and not self.sql.existing_ids.fetch(on, {"e_ids": [values["id"]]}):
                freed.append(i)  # its key's holder became final between the INSERT and this look
            else:
                raise IntegrityError("INSERT INTO jobs", None, Exception("duplicate job id"))
        return freed

    def _by_idempotency(self, on: Session | Connection, values: dict[str, Any]) -> Job | None:
        if values["idempotency_key"] is None:
            return None
        params = {
            "i_tenant": values["tenant"],
            "i_kind": values["kind"],
            "i_key": values["idempotency_key"],
        }
        if isinstance(on, Session):
            row: JobRow | None = on.scalar(self.sql.by_idempotency, params)
            return None if row is None else Job.from_row(row, created=False)
        found = on.execute(self.sql.by_idempotency, params).first()
        return None if found is None else Job.from_values(found._fields, found, created=False)

    def _values(self, spec: NewJob, now: datetime) -> dict[str, Any]:
        """A new job's row: a value for each of `NEW_COLUMNS`."""
        return {
            "id": spec.job_id or new_job_id(),
            "kind": spec.kind,
            "tenant": spec.tenant,
            "principal": spec.principal,
            "payload": spec.payload,
            "status": Status.QUEUED.value,
            "attempts": 0,
            "max_attempts": spec.max_attempts or self.policy_for(spec.kind).max_attempts,
            "run_after": _naive(spec.run_after) or now,
            "created_at": now,
            "updated_at": now,
            "exclusive_key": spec.exclusive_key,
            "idempotency_key": spec.idempotency_key,
            "after_id": spec.after_id,
            "waiting_on": None,
            "trace_context": spec.trace_context or job_origin(),
            "lease_owner": None,
            "lease_expires_at": None,
            "timeout_at": None,
            "started_at": None,
        }


def _row(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[c] for c in NEW_COLUMNS)


def _naive(value: datetime | None) -> datetime | None:
    """writegate stores naive UTC."""
    if value is not None and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value
