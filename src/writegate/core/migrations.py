"""Run Alembic migrations programmatically, one process at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from writegate.core.db import Database

#: pg_advisory_lock key shared by every writegate process ("wgmigrat")
MIGRATION_LOCK_KEY = 0x77676D6967726174


def alembic_config(db: Database, version_dirs: Sequence[Path]) -> Config:
    """An Alembic Config pointing at the packaged env and the given version directories."""
    cfg = Config()
    cfg.set_main_option("script_location", "writegate:migrations")
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(d) for d in version_dirs))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


@contextlib.contextmanager
def _exclusive(db: Database) -> Iterator[Connection]:
    if db.is_postgres:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
        return
    database = db.engine.url.database or ""
    lock_path = f"{database}.migrate.lock" if database and database != ":memory:" else None
    with contextlib.ExitStack() as stack:
        if lock_path:
            fh = stack.enter_context(open(lock_path, "a+b"))
            fcntl.flock(fh, fcntl.LOCK_EX)
        conn = stack.enter_context(db.write_engine.connect())
        yield conn


def upgrade(db: Database, version_dirs: Sequence[Path], revision: str = "heads") -> None:
    """Upgrade the schema to `revision` (every branch head by default)."""
    cfg = alembic_config(db, version_dirs)
    with _exclusive(db) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def current(db: Database, version_dirs: Sequence[Path]) -> set[str]:
    """Revisions the database is at."""
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
