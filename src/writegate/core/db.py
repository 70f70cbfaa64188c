"""Engine, sessions and metadata for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import decimal
import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from datetime import time as time_
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    MetaData,
    String,
    Table,
    TypeDecorator,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal

log = logging.getLogger("writegate.db")

T = TypeVar("T")

#: fn(session, items) -> one outcome per item: a result, or the exception for that item alone
ManyFn = Callable[[Session, list[Any]], list[Any]]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by the core and every module."""

    metadata = MetaData(naming_convention=NAMING)


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to emit.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
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


def build_engine(url: str, pool_size: int = 10) -> Engine:
    """Create an engine tuned for writegate's durability rules."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=pool_size,
            max_overflow=pool_size * 4,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_timeout=30)
    event.listen(engine, "checkin", _idle_since)
    dialect = engine.dialect

    def ping_if_idle(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        _ping_if_idle(dialect, dbapi_conn, record)

    event.listen(engine, "checkout", ping_if_idle)
    return engine


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


_LOCK_ONE = text("SELECT pg_advisory_xact_lock(:k)")
# unnest keeps the array's (sorted) order, so every transaction takes its locks in one order.
_LOCK_MANY = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:ks AS bigint[])) AS k")


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class ValueList(TypeDecorator[list[Any]]):
    """A list bound as one parameter: an array on PostgreSQL, a JSON array on SQLite."""

    impl = String
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(self.item))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return list(value) if dialect.name == "postgresql" else json.dumps(list(value))


class InValues(ColumnElement[bool]):
    """`column IN (values)` with every value in one parameter: one statement for any count.

    An expanding `in_()` renders one placeholder per value, so each list length is another
    statement to compile, cache and (on PostgreSQL) plan; this renders `column = ANY(:p)` on
    PostgreSQL and `column IN (SELECT value FROM json_each(:p))` on SQLite.
    """

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: never rendered as "(...) = 1" on SQLite
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("param", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.param = bindparam(name, type_=ValueList(column.type))


@compiles(InValues, "postgresql")
def _in_values_pg(element: InValues, compiler: Any, **kw: Any) -> str:
    column, param = compiler.process(element.column, **kw), compiler.process(element.param, **kw)
    return f"{column} = ANY({param})"


@compiles(InValues)
def _in_values(element: InValues, compiler: Any, **kw: Any) -> str:
    column, param = compiler.process(element.column, **kw), compiler.process(element.param, **kw)
    return f"{column} IN (SELECT value FROM json_each({param}))"


class BatchInsert:
    """A multi-row INSERT run straight on the driver connection: one statement per batch.

    For hot paths, where SQLAlchemy's per-row parameter handling costs more than the
    database's own work. Every value goes through its column type's own bind processor (and
    cast), so rows are stored exactly as an ORM or Core insert would store them. On SQLite
    it is a multi-row VALUES; on PostgreSQL the rows travel as one JSON document read by
    `json_to_recordset` into each column's type. Column defaults are not applied: give
    every column.
    """

    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str], tail: str) -> None:
        q = dialect.identifier_preparer
        names = ", ".join(q.quote(c) for c in columns)
        head = f"INSERT INTO {q.format_table(table)} ({names}) "
        tail = f" {tail}" if tail else ""
        self._columns = tuple(columns)
        self._processors: list[Callable[[Any], Any] | None] = []
        types = []
        for c in columns:
            impl = table.c[c].type.dialect_impl(dialect)
            self._processors.append(impl.bind_processor(dialect))
            types.append(dialect.type_compiler_instance.process(impl))
        #: PostgreSQL: the rows as one JSON document, so one short statement serves every
        #: batch size (the driver caches and prepares it; a long VALUES list is re-parsed on
        #: each call) and the driver dumps one string (typed arrays cost ~15 us a row)
        self._as_json = dialect.name == "postgresql"
        if self._as_json:
            # A JSON column's bind processor gives the serialized text: it travels as a JSON
            # string and is cast, so the column stores exactly that text.
            is_json = [isinstance(table.c[c].type, JSON) for c in columns]
            # Per column, not per value: a batch's rows often share one `now`, converted once.
            self._processors = [
                _json_text(p)
                if j
                else _iso
                if p is None and isinstance(table.c[c].type, DateTime)
                else p
                for c, p, j in zip(columns, self._processors, is_json, strict=True)
            ]
            picked = ", ".join(
                f"t.{q.quote(c)}::{t}" if j else f"t.{q.quote(c)}"
                for c, t, j in zip(columns, types, is_json, strict=True)
            )
            defined = ", ".join(
                f"{q.quote(c)} {'TEXT' if j else t}"
                for c, t, j in zip(columns, types, is_json, strict=True)
            )
            self._recordset = (
                f"{head}SELECT {picked} FROM json_to_recordset(%s::json) AS t({defined}){tail}"
            )
        else:
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            self._values_head, self._tail = f"{head}VALUES ", tail
            self._row = f"({', '.join([mark] * len(columns))})"
        self._sql: dict[int, str] = {}

    def sql(self, n: int) -> str:
        """The statement for n rows."""
        if self._as_json:
            return self._recordset
        sql = self._sql.get(n)
        if sql is None:
            sql = self._sql[n] = self._values_head + ", ".join([self._row] * n) + self._tail
        return sql

    def execute(self, on: Session | Connection, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Insert rows (one value per column, in order) in the transaction of `on`."""
        if not rows:
            return []
        conn = on.connection() if isinstance(on, Session) else on
        if self._as_json:
            names = self._columns
            doc = [
                dict(zip(names, row, strict=True))
                for row in zip(*self._by_column(rows), strict=True)
            ]
            return self._run(
                conn, len(rows), [json.dumps(doc, default=_json_scalar, allow_nan=False)]
            )
        out: list[Any] = []
        # A statement binds at most SQLITE_LIMIT_VARIABLE_NUMBER values (32,766 by default).
        raw = conn.connection.driver_connection
        if isinstance(raw, sqlite3.Connection):
            limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        else:
            limit = 32_766
        per = max(1, limit // len(self._processors))
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            out += self._run(conn, len(chunk), self._flat(chunk))
        return out

    def _by_column(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """Each column's values, through its bind processor."""
        return [
            _processed(p, col)
            for p, col in zip(self._processors, zip(*rows, strict=True), strict=True)
        ]

    def _flat(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        return [v for row in zip(*self._by_column(rows), strict=True) for v in row]

    def _run(self, conn: Connection, n: int, params: list[Any]) -> list[Any]:
        return driver_fetch(conn, self.sql(n), params)[0]


def driver_fetch(conn: Connection, sql: str, params: Any) -> tuple[list[Any], Any]:
    """Run SQL on conn's driver cursor: its rows and cursor description (None: no rows).

    For the hottest statements: SQLAlchemy's per-execution bookkeeping (execution context,
    cursor result, `Row`s) costs about as much as a warm round trip. A driver error is raised
    as SQLAlchemy's own `DBAPIError`, and a lost connection is invalidated, as
    `Connection.execute` does; no events fire and no values are processed.
    """
    dialect = conn.dialect
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql, params)
        description = cursor.description
        return (list(cursor.fetchall()) if description is not None else []), description
    except dialect.loaded_dbapi.Error as exc:
        gone = dialect.is_disconnect(exc, dbapi_conn, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=gone,
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()


class DriverStatement:
    """A fixed Core statement run on the driver's own cursor, for the hottest statement.

    Run by `driver_fetch` (the worker's claim pays SQLAlchemy's execution bookkeeping before
    every job runs). This compiles once, binds each value through its parameter type's bind
    processor, reads each returned column through its type's result processor, and returns
    plain tuples.
    """

    def __init__(
        self, dialect: Dialect, stmt: ClauseElement, returning: Sequence[ColumnElement[Any]] = ()
    ) -> None:
        compiled = stmt.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if any(b.expanding for b in compiled.bind_names):
            raise ValueError("an expanding IN cannot be compiled once; use InValues")
        self._dialect = dialect
        self.sql = compiled.string
        self._order = list(compiled.positiontup or ()) if compiled.positional else None
        #: literal values (a status in a WHERE clause), processed once
        self._fixed: dict[str, Any] = {}
        given: dict[str, tuple[str, str, Callable[[Any], Any] | None]] = {}
        for b, name in compiled.bind_names.items():
            proc = b.type.dialect_impl(dialect).bind_processor(dialect)
            if b.required or b.callable is not None:
                given[name] = (name, b.key, proc)  # a name used twice is bound once
            else:
                self._fixed[name] = proc(b.value) if proc else b.value
        #: (compiled name, key in the caller's params, bind processor) of every other parameter
        self._given = list(given.values())
        self._returning = [c.type.dialect_impl(dialect) for c in returning]
        #: each returned column's result processor, known from the first cursor description
        self._results: list[Callable[[Any], Any] | None] | None = None

    def _processors(self, description: Sequence[Any]) -> list[Callable[[Any], Any] | None]:
        if not self._returning:
            return [None] * len(description)
        return [
            impl.result_processor(self._dialect, col[1])
            for impl, col in zip(self._returning, description, strict=True)
        ]

    def fetch(self, conn: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement with `params` in conn's transaction; the returned rows."""
        values = dict(self._fixed)
        for name, key, proc in self._given:
            value = params[key]
            values[name] = value if proc is None else proc(value)
        bound: Any = [values[n] for n in self._order] if self._order is not None else values
        rows, description = driver_fetch(conn, self.sql, bound)
        if description is None:
            return []
        procs = self._results
        if procs is None:
            procs = self._results = self._processors(description)
        if not any(procs):
            return [tuple(r) for r in rows]
        return [
            tuple(v if p is None or v is None else p(v) for p, v in zip(procs, r, strict=True))
            for r in rows
        ]


def _json_text(processor: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """A JSON column's bind processor that gives the serialized text the driver would send."""

    def process(value: Any) -> Any:
        bound = processor(value) if processor else value
        if bound is None or isinstance(bound, str):
            return bound
        # psycopg's Json wrapper: the object and the dumps the dialect configured
        return (bound.dumps or json.dumps)(bound.obj)

    return process


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _json_scalar(value)


def _json_scalar(value: Any) -> Any:
    """A bound value JSON cannot carry, as the text PostgreSQL reads for its column type."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # writegate stores naive UTC
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, date | time_ | uuid.UUID | decimal.Decimal):
        return str(value)
    raise TypeError(f"cannot send a {type(value).__name__} in a batch insert")


def _processed(processor: Callable[[Any], Any] | None, values: Sequence[Any]) -> list[Any]:
    """One column's values through its bind processor.

    A batch's rows often share one object (the same `now` in every timestamp column): it is
    processed once, not once per row.
    """
    if processor is None:
        return list(values)
    out: list[Any] = []
    last: Any = _NOTHING
    done: Any = None
    for v in values:
        if v is not last:
            last, done = v, processor(v)
        out.append(done)
    return out


_NOTHING = object()


class _Call:
    """One queued group write: the function, its outcome and how to tell the caller."""

    __slots__ = ("done", "error", "fn", "future", "loop", "many", "result")

    def __init__(
        self,
        fn: Callable[[Session], Any],
        loop: asyncio.AbstractEventLoop | None,
        many: tuple[ManyFn, Any] | None = None,
    ):
        self.fn = fn
        self.loop = loop
        #: (function of many items, this caller's item): called once for all its twins
        self.many = many
        self.result: Any = None
        self.error: BaseException | None = None
        self.future: asyncio.Future[Any] | None = loop.create_future() if loop else None
        # A plain lock, held until the outcome is known, is the cheapest thing to wait on.
        self.done = threading.Lock()
        self.done.acquire()


def _settle(calls: list[_Call]) -> None:
    # Runs on the callers' event loop: one wake-up per batch, not one per caller.
    for c in calls:
        if c.future is None or c.future.done():
            continue
        if c.error is not None:
            c.future.set_exception(c.error)
        else:
            c.future.set_result(c.result)


class _GroupCommit:
    """Runs queued write functions in shared transactions (group commit).

    Async callers are batched per event loop and committed on the commit thread pool; sync
    callers (`group_write`) are batched by the writer thread. Whatever callers queue while a
    commit is in flight is run in the next transaction, and
    every caller is answered only after that one COMMIT (one fsync on SQLite) succeeded.
    The batch is first tried as one plain transaction; if any function raises, it is
    rolled back and run again with each function in its own savepoint, so one failing
    caller gets its error and the others still commit.
    """

    def __init__(self, db: Database, max_batch: int) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._on_loop: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
        #: batches of each loop being committed right now, at most `max_in_flight`
        self._in_flight: dict[asyncio.AbstractEventLoop, int] = {}
        # PostgreSQL commits batches concurrently (waiting on the server, not the CPU);
        # SQLite has one writer, so a second batch would only wait for the lock.
        self.max_in_flight = 1 if db.is_sqlite else 2
        self._committer: concurrent.futures.ThreadPoolExecutor | None = None
        self._flushing = threading.local()

    def submit_on_loop(
        self,
        fn: Callable[[Session], Any],
        loop: asyncio.AbstractEventLoop,
        many: tuple[ManyFn, Any] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue fn for the loop's next batch, committed on the commit thread pool.

        At most `max_in_flight` committers per loop run at a time. A committer takes every
        write the loop queued while its last batch was committing (their statements and
        fsync release the GIL) and commits them as its next batch, straight away: the next
        batch does not wait for the loop to hear that the last one is done.
        """
        if getattr(self._flushing, "active", False):
            raise RuntimeError("group_write() cannot be called from inside a group write")
        call = _Call(fn, loop, many)
        with self._lock:
            pending = self._on_loop.get(loop)
            start = pending is None and self._in_flight.get(loop, 0) < self.max_in_flight
            if pending is None:
                pending = self._on_loop[loop] = []
            pending.append(call)
            if start:
                self._in_flight[loop] = self._in_flight.get(loop, 0) + 1
                if self._committer is None:
                    self._committer = concurrent.futures.ThreadPoolExecutor(
                        self.max_in_flight, thread_name_prefix="writegate-commit"
                    )
                committer = self._committer
        if start:
            # The rest of this loop iteration's requests join the first batch too.
            loop.call_soon(committer.submit, self._drain, loop)
        assert call.future is not None
        return call.future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the loop's queued writes, batch after batch, until none are left."""
        self._flushing.active = True
        try:
            while True:
                with self._lock:
                    batch = self._on_loop.pop(loop, None)
                    if not batch:
                        self._in_flight[loop] -= 1
                        return
                try:
                    self._commit(batch)
                finally:
                    with contextlib.suppress(RuntimeError):  # the caller's loop is closed
                        loop.call_soon_threadsafe(_settle, batch)
        finally:
            self._flushing.active = False

    def submit(
        self,
        fn: Callable[[Session], Any],
        loop: asyncio.AbstractEventLoop | None,
    ) -> _Call:
        """Queue fn; the call is settled once its transaction has committed (or failed)."""
        if threading.current_thread() is self._thread or getattr(self._flushing, "active", False):
            raise RuntimeError("group_write() cannot be called from inside a group write")
        call = _Call(fn, loop)
        thread = self._thread
        if thread is None or not thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="writegate-group-commit", daemon=True
                    )
                    self._thread.start()
        self._queue.put(call)
        return call

    def stop(self) -> None:
        """Finish what is queued, then end the writer and commit threads."""
        committer, self._committer = self._committer, None
        if committer is not None:
            committer.shutdown(wait=True)
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(None)
        thread.join(30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                self._commit(batch)
            finally:
                self._answer(batch)
            if stop:
                return

    def _commit(self, batch: list[_Call]) -> None:
        try:
            with self.db.write() as session:
                groups: dict[ManyFn, list[_Call]] = {}
                for call in batch:
                    if call.many is not None:
                        groups.setdefault(call.many[0], []).append(call)
                    else:
                        call.result = call.fn(session)
                for fn, calls in groups.items():
                    outcomes = fn(session, [c.many[1] for c in calls if c.many is not None])
                    if len(outcomes) != len(calls):
                        raise RuntimeError(f"{fn!r} returned {len(outcomes)} outcomes")
                    for call, outcome in zip(calls, outcomes, strict=True):
                        if isinstance(outcome, BaseException):
                            call.error = outcome
                        else:
                            call.result = outcome
            return
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
        except BaseException as exc:
            for call in batch:
                call.error = exc
            raise
        self._commit_isolated(batch)

    def _commit_isolated(self, batch: list[_Call]) -> None:
        try:
            with self.db.write() as session:
                for call in batch:
                    call.result, call.error = None, None
                    try:
                        with session.begin_nested():
                            call.result = call.fn(session)
                    except Exception as exc:
                        call.result, call.error = None, exc
        except BaseException as exc:
            # Nothing committed: every caller gets the error.
            for call in batch:
                call.result, call.error = None, exc
            if not isinstance(exc, Exception):
                raise

    def _answer(self, batch: list[_Call]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
        for call in batch:
            if call.loop is not None:
                by_loop.setdefault(call.loop, []).append(call)
            call.done.release()
        for loop, calls in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the caller's loop is already closed
                loop.call_soon_threadsafe(_settle, calls)


class Database:
    """Engine plus read and write session factories."""

    def __init__(self, url: str, pool_size: int = 10, group_max_batch: int = 256) -> None:
        self.url = normalize_url(url)
        self.engine = build_engine(self.url, pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgres = self.engine.dialect.name == "postgresql"
        #: the engine for writes outside a session (DDL): on SQLite it begins IMMEDIATE, so a
        #: read-then-write never fails on a snapshot another writer moved past
        self.write_engine = self.engine.execution_options(writegate_write=True)
        self._write = sessionmaker(bind=self.write_engine, expire_on_commit=False)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._after_commit: list[Callable[[Session], None]] = []
        self._lock = threading.Lock()
        event.listen(self._write, "after_commit", self._run_after_commit)
        self._group = _GroupCommit(self, group_max_batch)

    def on_commit(self, callback: Callable[[Session], None]) -> None:
        """Call callback after every committed write session."""
        with self._lock:
            self._after_commit.append(callback)

    def _run_after_commit(self, session: Session) -> None:
        for cb in list(self._after_commit):
            cb(session)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with self._write() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def statement(self) -> Iterator[Connection]:
        """A connection for ONE write statement, which commits by itself when it succeeds.

        On PostgreSQL the statement runs in autocommit: no BEGIN and COMMIT round trips of
        their own (one statement is atomic anyway). On SQLite it runs in a write transaction,
        whose BEGIN IMMEDIATE waits for the single writer lock. Commit hooks do not run.
        """
        if not self.is_postgres:
            with self.write_engine.begin() as conn:
                yield conn
            return
        with self._autocommit.connect() as conn:
            yield conn

    def group_write(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in a write transaction shared with concurrent callers (group commit).

        Returns fn's result (or raises its exception) only after the shared transaction has
        committed; a caller whose fn raises does not affect the others. fn must be short and
        only touch the database through `session`: it may run twice (once in the shared
        attempt, once in its own savepoint) when another caller of its batch fails. Do not
        call this while holding another write transaction in the same thread.
        """
        call = self._group.submit(fn, None)
        call.done.acquire()
        if call.error is not None:
            raise call.error
        result: T = call.result
        return result

    async def group_many_async(self, fn: ManyFn, item: Any) -> Any:
        """Group commit where fn(session, items) handles every item queued with fn at once.

        fn returns one outcome per item, in order: a result, or an exception that is raised
        to that item's caller alone. For an item it refuses, fn must write nothing (the
        shared transaction goes on). If fn raises, the batch is retried with fn called for
        each item in its own savepoint, so fn may run more than once for an item.
        """

        def alone(session: Session) -> Any:
            outcome = fn(session, [item])[0]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        loop = asyncio.get_running_loop()
        return await self._group.submit_on_loop(alone, loop, many=(fn, item))

    async def group_write_async(self, fn: Callable[[Session], T]) -> T:
        """`group_write` for async code: awaits the shared commit without blocking the loop."""
        result: T = await self._group.submit_on_loop(fn, asyncio.get_running_loop())
        return result

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction."""
        with self._read() as session, session.begin():
            yield session

    def lock(self, session: Session, key: str) -> None:
        """Serialize transactions on `key` until the caller's transaction ends.

        PostgreSQL takes a transaction-scoped advisory lock; SQLite write transactions are
        already serialized by BEGIN IMMEDIATE, so nothing more is needed there.
        """
        self.lock_many(session, [key])

    def lock_many(self, session: Session, keys: Iterable[str]) -> None:
        """`lock` every key with one statement, in a fixed order (no deadlock between batches)."""
        if self.is_postgres:
            ids = sorted({_lock_id(k) for k in keys})
            # On the session's connection: the ORM's execute adds nothing to a plain SELECT.
            if len(ids) == 1:
                session.connection().execute(_LOCK_ONE, {"k": ids[0]})
            elif ids:
                session.connection().execute(_LOCK_MANY, {"ks": ids})

    def dispose(self) -> None:
        """Stop the group-commit writer and close every pooled connection."""
        self._group.stop()
        self.engine.dispose()
