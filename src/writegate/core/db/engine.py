"""The engine: SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE for writers) or PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

if TYPE_CHECKING:  # imported where it is used: only PostgreSQL's event-loop writes need it
    from sqlalchemy.ext.asyncio import AsyncEngine


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


#: the size SQLite truncates its WAL file to once a checkpoint has emptied it: a long read
#: (a backup, an operator's shell) holds the checkpoint back, the WAL grows past the
#: database's own size meanwhile, and without a limit the file keeps that size for good
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _sqlite_on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to emit.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_on_begin(conn: Any) -> None:
    # Writers take the lock up front: a deferred read->write upgrade can fail with SQLITE_BUSY.
    sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get("writegate_write") else "BEGIN"
    # Straight on the driver: a statement with no parameters and no result needs none of an
    # execution context's set-up, which cost as much as the rest of an empty transaction.
    try:
        conn.connection.driver_connection.execute(sql)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc


def _sqlite_engine(url: str, **pool: Any) -> Engine:
    """An SQLite engine whose every connection gets writegate's pragmas.

    Every engine hides its statements' parameters from its errors' text, which is logged:
    they are clients' data (e-mails, whole packages, tokens).
    """
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 60},
        hide_parameters=True,
        **pool,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


#: PostgreSQL plans each run of a statement, with the tables' sizes of that moment.
#: writegate's tables start empty and grow fast: a prepared statement's generic plan, made
#: and cached while `jobs` held a few rows, was a sequential scan, and every later
#: completion and claim scanned the whole table (PostgreSQL plans a cached statement again
#: only after an ANALYZE, which autovacuum may not run for a minute).
PLAN_EACH_RUN = "plan_cache_mode = force_custom_plan"

#: The claim is planned once per connection instead (psycopg prepares it at its fifth run),
#: with the scans that ignore an index's order turned off, so its one plan reads each kind's
#: range of `ix_jobs_claim` in order and its rows by the primary key (`sql.JobStatements`),
#: whatever the table's size when it was made. Planning it at each run was two thirds of its
#: time on the server (`pg_stat_statements` over a drain: 0.37 of 0.56 ms a claim).
CLAIM_PLAN = (
    "plan_cache_mode = force_generic_plan",
    "enable_seqscan = off",
    "enable_bitmapscan = off",
)


def build_engine(
    url: str,
    pool_size: int | None = 10,
    *,
    settings: Sequence[str] = (PLAN_EACH_RUN,),
    autocommit: bool = False,
) -> Engine:
    """Create an engine tuned for writegate's durability rules.

    `pool_size=None`: no pool (a command's one connection, closed when it is done).
    `settings`: the PostgreSQL session settings (`SET` ...) of each pooled connection.
    `autocommit` (PostgreSQL): every connection in autocommit from when it is opened.
    """
    url = normalize_url(url)
    if pool_size is None:
        pool: dict[str, Any] = {"poolclass": NullPool}
    else:
        overflow = pool_size * (4 if url.startswith("sqlite") else 2)
        # Last in, first out: a steady load keeps reusing the few connections it needs,
        # whose prepared statements (SQLite's cache holds each batch size's multi-row
        # statement) are warm, instead of rotating through every pooled one, each of which
        # then holds a copy of them all.
        pool = {"pool_size": pool_size, "max_overflow": overflow, "pool_use_lifo": True}
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url, **pool)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if autocommit:
        pool["isolation_level"] = "AUTOCOMMIT"
    if pool_size is None:
        # A fresh connection each time: nothing to ping.
        return create_engine(url, hide_parameters=True, **pool)
    engine = create_engine(url, pool_timeout=30, hide_parameters=True, **pool)
    _set_on_connect(engine, *settings)
    _ping_idle_connections(engine)
    return engine


def build_loop_engine(url: str, size: int) -> AsyncEngine:
    """PostgreSQL's engine of writes run on an event loop: `size` of psycopg's async
    connections (a batch in flight holds one; a batch past them waits on the loop), with
    `build_engine`'s session settings and idle pings (see `GroupCommit.attach`)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async_url = make_url(normalize_url(url)).set(drivername="postgresql+psycopg_async")
    engine = create_async_engine(
        async_url, pool_size=size, max_overflow=0, pool_timeout=30, hide_parameters=True
    )
    _set_on_connect(engine.sync_engine, PLAN_EACH_RUN)
    _ping_idle_connections(engine.sync_engine)
    return engine


def build_unflushed_engine(url: str) -> Engine:
    """PostgreSQL connections in autocommit whose commits do not wait for their WAL flush,
    and whose statements are planned once (`CLAIM_PLAN`): the claim's.

    `synchronous_commit` is set once per connection, when it is opened, rather than with a
    `SET LOCAL` in each transaction: that was a round trip of its own, before the BEGIN and
    COMMIT ones. Autocommit too, rather than switched on at each checkout and off at each
    checkin (`execution_options`): no round trip, but SQLAlchemy's and psycopg's machinery
    for it cost a claim more than the rest of its checkout. See `Database.statement`.
    """
    return build_engine(url, 2, settings=["synchronous_commit = off", *CLAIM_PLAN], autocommit=True)


def _set_on_connect(engine: Engine, *settings: str) -> None:
    """`SET` each of these on every new connection of a PostgreSQL engine."""

    def apply(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_conn.cursor()
        for setting in settings:
            cursor.execute(f"SET {setting}")
        cursor.close()
        dbapi_conn.commit()  # session settings: they outlive the transaction that set them

    event.listen(engine, "connect", apply)


def _never_wait(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_conn.execute("PRAGMA busy_timeout=0")


def build_sqlite_loop_engine(url: str) -> Engine:
    """SQLite's engine of writes run on an event loop (see `GroupCommit.attach`): one
    connection, whose BEGIN IMMEDIATE never waits for the lock (SQLITE_BUSY at once)."""
    engine = _sqlite_engine(normalize_url(url), pool_size=1, max_overflow=0)
    event.listen(engine, "connect", _never_wait)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine.execution_options(writegate_write=True)


def build_read_engine(url: str, pool_size: int) -> Engine:
    """SQLite's engine of reads run on the event loop (see `core.db.reads`): the same pragmas,
    and no BEGIN of its own, so each statement is its own snapshot."""
    # Never wait for a connection: a wait would block the event loop.
    return _sqlite_engine(normalize_url(url), pool_size=pool_size, max_overflow=-1)


def dialect_of(url: str) -> Dialect:
    """The dialect of url's engines, without an engine (to compile statements for the driver)."""
    dialect_class: Any = make_url(normalize_url(url)).get_dialect()
    dialect: Dialect = dialect_class(dbapi=dialect_class.import_dbapi())  # as create_engine does
    return dialect


def track_backends(engine: Engine, backends: set[int]) -> None:
    """Keep `backends` the server process ids of a PostgreSQL engine's open connections."""

    def opened(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["backend_pid"] = pid = dbapi_conn.info.backend_pid
        backends.add(pid)

    def closed(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        backends.discard(record.info.pop("backend_pid", None))

    event.listen(engine, "connect", opened)
    event.listen(engine, "close", closed)


def _ping_idle_connections(engine: Engine) -> None:
    event.listen(engine, "checkin", _idle_since)
    dialect = engine.dialect

    def ping_if_idle(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        _ping_if_idle(dialect, dbapi_conn, record)

    event.listen(engine, "checkout", ping_if_idle)


#: a pooled connection idle for longer than this is pinged before use
IDLE_PING_SECONDS = 1.0


def _idle_since(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    record.info["writegate_idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    # pool_pre_ping costs a round trip on every checkout, which is most of a busy accept's or
    # claim's latency; a connection used within the last second is as good as pinged. A dead
    # one raises DisconnectionError, and the pool replaces it and tries again.
    if getattr(dbapi_conn, "broken", False) or getattr(dbapi_conn, "closed", False):
        raise DisconnectionError("connection is broken")
    since = record.info.get("writegate_idle_since")
    if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
        return
    try:
        # The dialect's ping runs in autocommit: a plain SELECT would leave the driver in a
        # transaction, and an AUTOCOMMIT checkout (`Database.statement`) would then fail.
        dialect.do_ping(dbapi_conn)
    except Exception as exc:
        raise DisconnectionError(f"ping failed: {exc}") from exc
