"""SQLite specifics of core.db, on a throw-away database file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from writegate.core.db import Database


def test_a_write_that_cannot_take_the_write_lock_raises_sqlalchemys_error(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE runs on the driver, but its failure is still SQLAlchemy's error."""
    path = tmp_path / "locked.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.write() as s:  # creates the file in WAL mode
            s.execute(text("CREATE TABLE t (x INTEGER)"))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with db.write_engine.connect() as conn:
                conn.connection.driver_connection.execute("PRAGMA busy_timeout=50")
                with pytest.raises(OperationalError, match="locked") as info:
                    conn.execute(text("INSERT INTO t VALUES (1)"))
            assert isinstance(info.value.orig, sqlite3.OperationalError)
            assert info.value.statement == "BEGIN IMMEDIATE"
        finally:
            holder.rollback()
            holder.close()
        with db.write() as s:  # the lock is free again: writes go on
            s.execute(text("INSERT INTO t VALUES (2)"))
        with db.read() as s:
            assert s.scalar(text("SELECT count(*) FROM t")) == 1
    finally:
        db.dispose()
