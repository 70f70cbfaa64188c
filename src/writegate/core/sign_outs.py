"""Console sessions signed out before their cookie expires (SQLAlchemy Core, no ORM).

A console cookie is signed, not stored: signing out records its session id here, and every
process refuses that id until the cookie would have expired anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, DateTime, Index, String, Table, delete, insert, select

from writegate.core.db.metadata import METADATA

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SIGN_OUTS = Table(
    "console_sign_outs",
    METADATA,
    Column("sid", String(64), primary_key=True),
    # the cookie's own expiry: after it the cookie is refused without this row
    Column("until", DateTime, nullable=False),
    Index("ix_console_sign_outs_until", "until"),
)

_C = SIGN_OUTS.c


def signed_out(session: Session, sid: str) -> bool:
    """Whether the session `sid` was signed out."""
    return session.execute(select(_C.sid).where(_C.sid == sid)).first() is not None


def sign_out(session: Session, sid: str, *, until: datetime, now: datetime) -> None:
    """Refuse session `sid` until `until`; forget the sign-outs whose cookies have expired."""
    session.execute(delete(SIGN_OUTS).where(_C.until < now))
    if not signed_out(session, sid):
        session.execute(insert(SIGN_OUTS).values(sid=sid, until=until))
