"""jef-one tables: sessions, entities, employees (names as the jef-one backend has them)."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Table, Text, literal_column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from writegate.core.db import Base, BatchInsert

SESSIONS = "jef-one-sessions"
ENTITIES = "jef-one-entities"
EMPLOYEES = "jef-one-employees"


class Entity(Base):
    """A jef-one entity (company / site)."""

    __tablename__ = ENTITIES

    entity_number: Mapped[str] = mapped_column(String(4), primary_key=True)
    entity_name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Employee(Base):
    """An employee of one entity."""

    __tablename__ = EMPLOYEES

    entity_number: Mapped[str] = mapped_column(
        String(4), ForeignKey(f"{ENTITIES}.entity_number"), primary_key=True
    )
    employee_number: Mapped[str] = mapped_column(String(5), primary_key=True)
    employee_name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class SessionRecord(Base):
    """A jef-one application session, created and verified by a job."""

    __tablename__ = SESSIONS

    session_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    entity_number: Mapped[str] = mapped_column(String(4))
    employee_number: Mapped[str] = mapped_column(String(5))
    application_type: Mapped[str] = mapped_column(String(16))
    application_number: Mapped[str] = mapped_column(String(3))
    #: "verified" or "failed"
    status: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (
        Index("ix_jef_one_sessions_entity_employee", "entity_number", "employee_number"),
    )


#: the session upsert's columns, in the order of its rows
SESSION_COLUMNS = (
    "session_id",
    "entity_number",
    "employee_number",
    "application_type",
    "application_number",
    "status",
    "failure_reason",
    "job_id",
    "created_at",
    "updated_at",
    "verified_at",
)


@functools.cache
def session_upsert(dialect: Dialect) -> BatchInsert:
    """Write sessions verified or failed by their jobs, except ones already verified; return
    the ids written.

    One statement decides: a verified session is left as it is and not returned. Run on the
    driver: one multi-row statement for a batch of session jobs.
    """
    sessions: Table = SessionRecord.__table__  # type: ignore[assignment]
    ins = (pg_insert if dialect.name == "postgresql" else sqlite_insert)(sessions)
    upsert = ins.on_conflict_do_update(
        index_elements=[sessions.c.session_id],
        set_={c: ins.excluded[c] for c in SESSION_COLUMNS if c not in ("session_id", "created_at")},
        # Written out, not bound: the ON CONFLICT clause below is taken as text.
        where=sessions.c.status != literal_column("'verified'"),
    )
    sql = str(upsert.values(dict.fromkeys(SESSION_COLUMNS)).compile(dialect=dialect))
    tail = sql[sql.index("ON CONFLICT") :]
    return BatchInsert(dialect, sessions, SESSION_COLUMNS, tail, key="session_id")
