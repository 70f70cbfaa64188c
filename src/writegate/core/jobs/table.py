"""The `jobs` table as SQLAlchemy Core declares it: the ORM's `JobRow` maps onto it.

A command that only reads jobs (`writegate jobs list`) queries it without loading the ORM.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, String, Table, Text, text

from writegate.core.db.metadata import METADATA

#: the PostgreSQL channel told of newly claimable jobs: by a jobs INSERT that queued one
#: (its trigger, migration core_0009) and by an operator's retry or cancel (`operator.announce`)
NOTIFY_CHANNEL = "writegate_jobs"

JOBS = Table(
    "jobs",
    METADATA,
    Column("id", String(36), primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("tenant", String(200), nullable=False),
    Column("principal", String(200)),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", DateTime, nullable=False),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", DateTime),
    Column("timeout_at", DateTime),
    Column("progress", JSON),
    Column("checkpoint", JSON),
    Column("result", JSON),
    Column("error", Text),
    Column("exclusive_key", String(200)),
    Column("idempotency_key", String(200)),
    # the job that must be final before this one is claimed (migration core_0004)
    Column("after_id", String(36)),
    # after_id while that job is still active: the job is out of the claim's index until
    # the dependency's final state releases it (migration core_0007)
    Column("waiting_on", String(36)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    # where the job came from: {"request_id", "traceparent"} (W3C), for logs and traces
    # (migration core_0005)
    Column("trace_context", JSON(none_as_null=True)),
    Index("ix_jobs_tenant_kind_created", "tenant", "kind", "created_at"),
    # Newest-first keyset pages (the console) walk it from either end in the same time:
    # jobs.id is a UUIDv7 for most kinds but not all, so it alone does not order by age.
    Index("ix_jobs_created_id", "created_at", "id"),
)

#: an active job holding an exclusive key, as SQL text. Queries write it out rather than bind
#: its values: a partial index serves only a query whose own text implies the index's WHERE
#: (with `status IN (?, ?)` SQLite scans the whole table).
ACTIVE_KEYED = "status IN ('queued', 'running') AND exclusive_key IS NOT NULL"

#: a queued job that waits for no other: what the claim's index holds, as SQL text
CLAIMABLE = "status = 'queued' AND waiting_on IS NULL"

#: (name, columns, WHERE, unique) of each partial index
_PARTIAL = (
    # By kind first: a claim reads only its own kinds' due jobs, whatever else is queued.
    ("ix_jobs_claim", ("kind", "run_after", "created_at"), CLAIMABLE, False),
    ("ix_jobs_lease", ("lease_expires_at",), "status = 'running'", False),
    (
        "uq_jobs_exclusive_active",
        ("exclusive_key",),
        ACTIVE_KEYED,
        True,
    ),
    # Only keyed jobs: most jobs have no key, and an entry each would cost every insert.
    (
        "uq_jobs_idempotency",
        ("tenant", "kind", "idempotency_key"),
        "idempotency_key IS NOT NULL",
        True,
    ),
    ("ix_jobs_finished", ("finished_at",), "finished_at IS NOT NULL", False),
    ("ix_jobs_waiting", ("waiting_on",), "waiting_on IS NOT NULL", False),
)


def add_partial_indexes() -> None:
    """Declare the partial indexes on `JOBS` (once; the ORM model does, for DDL and migrations).

    Their `sqlite_where`/`postgresql_where` options import both dialects' modules (0.1 s for
    PostgreSQL's), which a command that only reads jobs does not need.
    """
    if any(index.name == _PARTIAL[0][0] for index in JOBS.indexes):
        return
    for name, columns, where, unique in _PARTIAL:
        condition = text(where)
        Index(
            name,
            *(JOBS.c[c] for c in columns),
            unique=unique,
            sqlite_where=condition,
            postgresql_where=condition,
        )
