"""BokaMera tables: Axema settings per company, sync records, customers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from writegate.core.db import Base


class AxemaSettingsRow(Base):
    """A company's Axema Vaka connection; the password only ever stored encrypted."""

    __tablename__ = "bokamera_axema_settings"

    company_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200), index=True)
    api_endpoint: Mapped[str] = mapped_column(String(500))
    api_port: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(200))
    password_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class UserSyncRow(Base):
    """One requested sync; its status and counters live on the core job of the same id."""

    __tablename__ = "bokamera_axema_user_syncs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36))
    tenant: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_bokamera_syncs_company_created", "company_id", "created_at"),)


class CustomerRow(Base):
    """A BokaMera customer; synced ones carry the Vaka user id they came from."""

    __tablename__ = "bokamera_customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36))
    vaka_user_id: Mapped[str | None] = mapped_column(String(100))
    firstname: Mapped[str | None] = mapped_column(String(100))
    lastname: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    access_card: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("company_id", "vaka_user_id", name="uq_bokamera_customers_vaka_user"),
        Index("ix_bokamera_customers_company_email", "company_id", "email"),
    )
