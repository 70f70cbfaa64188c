"""Tables of the ABS module: registered client codes and packages."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from writegate.core.db import Base

#: `state` of a live package
STATE_ACTIVE = 0
#: `state` of a deleted package (kept for replication)
STATE_DELETED = 1


class AbsClient(Base):
    """A registered client code (the ABS tenant)."""

    __tablename__ = "abs_clients"

    client_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class AbsPackage(Base):
    """A package record with its replication fields."""

    __tablename__ = "abs_packages"
    __table_args__ = (
        Index("ix_abs_packages_client_version", "client_code", "version"),
        Index("ix_abs_packages_client_id", "client_code", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    client_code: Mapped[str] = mapped_column(String(64))
    #: global, commit-ordered change counter ("abs.version"); the changes feed walks it
    version: Mapped[int] = mapped_column(BigInteger, unique=True)
    state: Mapped[int] = mapped_column(Integer, default=STATE_ACTIVE)
    checksum: Mapped[str] = mapped_column(String(64))
    oauth_access_token: Mapped[str] = mapped_column(Text, default="")
    payment_import_initiation_id: Mapped[int] = mapped_column(BigInteger, default=0)
    processing_date: Mapped[date | None] = mapped_column(Date)
    processing_status: Mapped[str] = mapped_column(String(100))
    processing_step: Mapped[str] = mapped_column(String(100))
    create_user: Mapped[str] = mapped_column(String(200))
    create_date: Mapped[datetime] = mapped_column(DateTime)
    modify_user: Mapped[str] = mapped_column(String(200))
    modify_date: Mapped[datetime] = mapped_column(DateTime)
