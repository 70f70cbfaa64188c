"""The declarative base shared by the core and every module."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from writegate.core.db.metadata import METADATA, NAMING

__all__ = ["NAMING", "Base"]


class Base(DeclarativeBase):
    """Declarative base shared by the core and every module."""

    metadata = METADATA
