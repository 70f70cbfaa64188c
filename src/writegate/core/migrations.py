"""Run Alembic migrations programmatically, one process at a time.

Alembic is imported only when the schema is behind: a process that finds it at head (read
from the version files without importing them) never loads Alembic, its templates or the
migration scripts, which would otherwise stay resident for the life of the process.
"""

from __future__ import annotations

import ast
import contextlib
import enum
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

    from writegate.core.db import Database

#: pg_advisory_lock key shared by every writegate process ("wgmigrat")
MIGRATION_LOCK_KEY = 0x77676D6967726174


def alembic_config(db: Database, version_dirs: Sequence[Path]) -> Config:
    """An Alembic Config pointing at the packaged env and the given version directories."""
    from alembic.config import Config

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


_KEYS = ("revision", "down_revision", "depends_on")
#: one `ast.parse` at a time: CPython 3.11 shares the AST builder's recursion counter between
#: threads, and two parses at once can fail with "AST constructor recursion depth mismatch"
#: (python/cpython#106905; it failed a test server's start-up beside another's)
_PARSING = threading.Lock()


def _names(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _literals(path: Path) -> dict[str, object] | None:
    """The module-level revision, down_revision and depends_on literals of one script."""
    found: dict[str, object] = {}
    source = path.read_bytes()
    with _PARSING:
        tree = ast.parse(source, str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in _KEYS:
            try:
                found[target.id] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError):
                return None
    return found


def revision_graph(version_dirs: Sequence[Path]) -> dict[str, tuple[str, ...]] | None:
    """Each revision's parents (down revisions and dependencies), parsed, not imported.

    None if any script Alembic would load does not declare them as plain literals.
    """
    graph: dict[str, tuple[str, ...]] = {}
    for directory in version_dirs:
        # The files Alembic loads as revisions: every .py but __init__ and editor locks.
        for path in sorted(Path(directory).glob("*.py")):
            if path.name == "__init__.py" or path.name.startswith(".#"):
                continue
            found = _literals(path)
            if found is None:
                return None
            revision = found.get("revision")
            parents = [_names(found.get(k)) for k in ("down_revision", "depends_on")]
            if not isinstance(revision, str) or revision in graph or None in parents:
                return None
            graph[revision] = tuple(p for ps in parents if ps for p in ps)
    return graph


class SchemaState(enum.Enum):
    """How a database's schema compares with this code's migration scripts."""

    MISSING = "missing"  # no alembic_version table, or no revision in it
    BEHIND = "behind"  # some of this code's revisions are not applied
    AHEAD = "ahead"  # a revision this code does not know (migrated by a newer release)
    CURRENT = "current"  # exactly this code's revisions
    UNKNOWN = "unknown"  # the scripts do not declare plain literals: cannot tell cheaply


def _compare(rows: Sequence[str], graph: dict[str, tuple[str, ...]]) -> SchemaState:
    if not rows:
        return SchemaState.MISSING
    applied: set[str] = set()
    todo = list(rows)
    while todo:
        rev = todo.pop()
        if rev in applied:
            continue
        if rev not in graph:
            return SchemaState.AHEAD  # or a parent named by branch label
        applied.add(rev)
        todo.extend(graph[rev])
    return SchemaState.CURRENT if applied == set(graph) else SchemaState.BEHIND


def _version_table_exists(conn: Connection) -> bool:
    if conn.dialect.name == "postgresql":
        found = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
    else:
        found = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
        ).scalar()
    return found is not None


def schema_state(conn: Connection, version_dirs: Sequence[Path]) -> SchemaState:
    """Compare the schema with the scripts, reading only (never creates a table)."""
    if not _version_table_exists(conn):
        return SchemaState.MISSING
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    graph = revision_graph(version_dirs)
    if not graph:
        return SchemaState.UNKNOWN if rows else SchemaState.MISSING
    return _compare(rows, graph)


def at_head(db: Database, version_dirs: Sequence[Path]) -> bool:
    """True only if every revision is applied; False when in doubt (Alembic then decides)."""
    return schema_of(db, version_dirs) is SchemaState.CURRENT


def schema_of(db: Database, version_dirs: Sequence[Path]) -> SchemaState:
    """`schema_state` of db; MISSING if it cannot be read (no database yet)."""
    try:
        with db.engine.connect() as conn:
            return schema_state(conn, version_dirs)
    except DBAPIError:
        return SchemaState.MISSING


def upgrade(db: Database, version_dirs: Sequence[Path], revision: str = "heads") -> None:
    """Upgrade the schema to `revision` (every branch head by default)."""
    if revision == "heads" and at_head(db, version_dirs):
        return
    from alembic import command

    cfg = alembic_config(db, version_dirs)
    cfg.attributes["import_models"] = False
    with _exclusive(db) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def current(db: Database, version_dirs: Sequence[Path]) -> set[str]:
    """Revisions the database is at."""
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
