"""Who/when stamps, monotonic record versions, checksums."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from typing import Any

from sqlalchemy import BigInteger, String, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from writegate.core.db import Base, prepared


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
    conn = session.connection()
    params = {"n_name": name, "n_step": step}
    bump = prepared(conn.dialect, _BUMP)
    value = bump.scalars(conn, params)
    if not value:  # a counter's first use: create it (or find it created meanwhile)
        prepared(conn.dialect, _create(conn.dialect.name)).execute(conn, params)
        value = bump.scalars(conn, params)
    return int(value[0])


_COUNTERS: Table = CounterRow.__table__  # type: ignore[assignment]
#: add `n_step` to counter `n_name`; its new value (no row: the counter is new)
_BUMP = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == bindparam("n_name"))
    .values(value=_COUNTERS.c.value + bindparam("n_step", type_=BigInteger))
    .returning(_COUNTERS.c.value)
)


@functools.cache
def _create(dialect: str) -> Any:
    """Counter `n_name` at 0, unless it exists."""
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    return ins(_COUNTERS).values(name=bindparam("n_name"), value=0).on_conflict_do_nothing()


def current_value(session: Session, name: str) -> int:
    """The counter's current value (0 if never used)."""
    value = session.scalar(select(CounterRow.value).where(CounterRow.name == name))
    return int(value or 0)


def canonical_json(data: Any) -> bytes:
    """Stable JSON bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def checksum(data: Any) -> str:
    """Base64 SHA-256 of the canonical JSON of `data`."""
    return base64.b64encode(hashlib.sha256(canonical_json(data)).digest()).decode()
