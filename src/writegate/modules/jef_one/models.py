"""jef-one tables: sessions, entities, employees (names as the jef-one backend has them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from writegate.core.db import Base

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
