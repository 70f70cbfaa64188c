"""Who/when stamps, monotonic record versions, checksums."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from writegate.core.db import Base


class CounterRow(Base):
    """A named counter: sequences for ids, versions and auto codes."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


def next_value(session: Session, name: str, step: int = 1) -> int:
    """Increment counter `name` in the caller's transaction and return the new value.

    The row stays locked until the caller commits, so values are handed out in commit
    order: a reader that has seen value N has seen every commit that got a value below N.
    """
    dialect = session.get_bind().dialect.name
    ins: Any
    if dialect == "postgresql":
        ins = pg_insert(CounterRow).values(name=name, value=0).on_conflict_do_nothing()
    elif dialect == "sqlite":
        ins = sqlite_insert(CounterRow).values(name=name, value=0).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported dialects
        ins = insert(CounterRow).values(name=name, value=0)
    session.execute(ins)
    value = session.execute(
        update(CounterRow)
        .where(CounterRow.name == name)
        .values(value=CounterRow.value + step)
        .returning(CounterRow.value)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return int(value)


def current_value(session: Session, name: str) -> int:
    """The counter's current value (0 if never used)."""
    value = session.scalar(select(CounterRow.value).where(CounterRow.name == name))
    return int(value or 0)


@dataclass(frozen=True)
class Stamp:
    """Who did a write and when (naive UTC)."""

    user: str
    at: datetime


def canonical_json(data: Any) -> bytes:
    """Stable JSON bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def checksum(data: Any) -> str:
    """Base64 SHA-256 of the canonical JSON of `data`."""
    return base64.b64encode(hashlib.sha256(canonical_json(data)).digest()).decode()
