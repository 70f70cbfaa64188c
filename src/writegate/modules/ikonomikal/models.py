"""Ikonomikal tables: login sessions and failures, outstanding process tokens, SS07 records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from writegate.core.db import Base


class SessionRow(Base):
    """A logged-in user (sessID); only the SHA-256 of the session id is stored."""

    __tablename__ = "ikonomikal_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sess_hash: Mapped[str] = mapped_column(String(64), unique=True)
    subs_id: Mapped[str] = mapped_column(String(200))
    principal: Mapped[str] = mapped_column(String(200))
    int_gid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime] = mapped_column(DateTime)


class ProcTokenRow(Base):
    """An outstanding process token of a session; the core's token row decides its use.

    Only the token's digest is kept: enough to find the core's row and consume it.
    """

    __tablename__ = "ikonomikal_proc_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("ikonomikal_sessions.id", ondelete="CASCADE")
    )
    program: Mapped[str] = mapped_column(String(32))
    proc_id: Mapped[int] = mapped_column(Integer)
    #: SHA-256 of the token (the core's `token_digest`): clients never send the token back,
    #: the server picks it by scope and consumes it by this digest
    token_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_ikonomikal_proc_tokens_scope", "session_id", "program", "proc_id"),)


class SS07Row(Base):
    """One SS07 (department profile) record of a subscriber."""

    __tablename__ = "ikonomikal_ss07"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subs_id: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(20))
    #: upper-cased code: codes are unique per subscriber regardless of case (a letter's
    #: capitals are up to three characters: "ß" -> "SS", "ﬃ" -> "FFI")
    code_key: Mapped[str] = mapped_column(String(60))
    f002: Mapped[str] = mapped_column(String(200))
    f003: Mapped[str] = mapped_column(String(200))
    f004: Mapped[int] = mapped_column(Integer)
    l001: Mapped[str] = mapped_column(String(100))
    l002: Mapped[str] = mapped_column(String(100))
    l003: Mapped[str] = mapped_column(String(100))
    l004: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    m_user: Mapped[str] = mapped_column(String(100))
    m_group: Mapped[str] = mapped_column(String(100))
    modified_by: Mapped[str] = mapped_column(String(200))
    modified_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("subs_id", "code_key", name="uq_ikonomikal_ss07_code"),)
