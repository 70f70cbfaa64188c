"""A scratch table of every column type the batch statements bind, and a row of values."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Time,
    Uuid,
)

#: one value of each column but `id`, each a case its type's processor must get right
EVERY_TYPE: dict[str, Any] = {
    "day": date(2031, 2, 3),
    "at": time(4, 5, 6, 789000),
    "ts": datetime(2031, 2, 3, 4, 5, 6, 7),
    "u": uuid.UUID("0193a3f2-1c2d-7e4f-8a9b-0c1d2e3f4a5b"),
    "amount": Decimal("1234.500"),
    "flag": True,
    "n": -7,
    "doc": {"k": ['a"b', None, 1.5], "naïve": "☃"},
    "note": "it's \\ a, {note}",
}


def typed_table(name: str, metadata: MetaData, *, note_nullable: bool = True) -> Table:
    """A table with a string `id` and one column of each type in `EVERY_TYPE`."""
    return Table(
        name,
        metadata,
        Column("id", String(64), primary_key=True),
        Column("day", Date),
        Column("at", Time),
        Column("ts", DateTime),
        Column("u", Uuid),
        Column("amount", Numeric(12, 3)),
        Column("flag", Boolean),
        Column("n", Integer),
        Column("doc", JSON),
        Column("note", String(200), nullable=note_nullable),
    )
