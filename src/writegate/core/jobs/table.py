"""The `jobs` table as SQLAlchemy Core declares it: the ORM's `JobRow` maps onto it.

A command that only reads jobs (`writegate jobs list`) queries it without loading the ORM.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, String, Table, Text, text

from writegate.core.db.metadata import METADATA


def _partial(*columns: str, name: str, where: str, unique: bool = False) -> Index:
    """An index over the rows matching `where` only, on SQLite and PostgreSQL alike."""
    condition = text(where)
    return Index(name, *columns, unique=unique, sqlite_where=condition, postgresql_where=condition)


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
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    # where the job came from: {"request_id", "traceparent"} (W3C), for logs and traces
    # (migration core_0005)
    Column("trace_context", JSON(none_as_null=True)),
    _partial("run_after", "created_at", name="ix_jobs_claim", where="status = 'queued'"),
    _partial("lease_expires_at", name="ix_jobs_lease", where="status = 'running'"),
    _partial(
        "exclusive_key",
        name="uq_jobs_exclusive_active",
        where="status IN ('queued', 'running') AND exclusive_key IS NOT NULL",
        unique=True,
    ),
    # Only keyed jobs: most jobs have no key, and an entry each would cost every insert.
    _partial(
        "tenant",
        "kind",
        "idempotency_key",
        name="uq_jobs_idempotency",
        where="idempotency_key IS NOT NULL",
        unique=True,
    ),
    Index("ix_jobs_tenant_kind_created", "tenant", "kind", "created_at"),
    # Newest-first keyset pages (the console) walk it from either end in the same time:
    # jobs.id is a UUIDv7 for most kinds but not all, so it alone does not order by age.
    Index("ix_jobs_created_id", "created_at", "id"),
    _partial("finished_at", name="ix_jobs_finished", where="finished_at IS NOT NULL"),
)
