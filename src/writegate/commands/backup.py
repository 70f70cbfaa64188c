"""`writegate backup DEST`: a consistent, durable copy of the SQLite database, taken live."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from writegate.commands.common import USAGE, console, fail, load_settings, shown

#: where PostgreSQL's backups come from instead
_PG_HINT = "use pg_dump or the server's base backups (docs/operations.md, Backup)"


def backup(
    dest: Annotated[Path, typer.Argument(help="The new file (must not exist).")],
) -> None:
    """Copy the SQLite database to a new file while writegate runs (consistent, durable)."""
    from sqlalchemy.engine import make_url

    settings = load_settings()
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        fail(f"backup copies an SQLite database; on PostgreSQL {_PG_HINT}", USAGE)
    source = Path(url.database or "")
    if not source.is_file():
        fail(f"no database file at {source}", USAGE)
    dest = dest.absolute()
    if dest.exists():
        fail(f"{dest} exists: a backup never overwrites a file", USAGE)
    if not dest.parent.is_dir():
        fail(f"no directory {dest.parent}", USAGE)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        _copy(source, partial)
        _check(partial)
        _sync(partial)
        os.replace(partial, dest)
        _sync(dest.parent)
    except sqlite3.Error as exc:
        fail(f"backup of {source} failed: {exc}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    size = dest.stat().st_size / 1e6
    console().print(f"backed up {shown(str(source))} to {shown(str(dest))} ({size:.1f} MB)")


def _copy(source: Path, to: Path) -> None:
    """VACUUM INTO: one read transaction, so one snapshot, that writers never wait for (WAL)
    and that their commits never restart (the online backup API's steps start over)."""
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("VACUUM INTO ?", (str(to),))
    finally:
        conn.close()


def _check(copy: Path) -> None:
    """The copy reads back as a whole database (SQLite's quick_check)."""
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        result = [row[0] for row in conn.execute("PRAGMA quick_check")]
    finally:
        conn.close()
    if result != ["ok"]:
        raise sqlite3.DatabaseError(f"the copy does not check: {'; '.join(result[:3])}")


def _sync(path: Path) -> None:
    """fsync a file or directory: VACUUM INTO does not, and a rename is durable only once
    its directory is."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
