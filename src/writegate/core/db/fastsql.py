"""Statements run on the driver's own cursor: every statement of a request's or a job's write,
and every read."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Row
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.engine.result import result_tuple
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, ColumnElement

T = TypeVar("T")


def connection_of(on: Session | Connection) -> Connection:
    """The connection of a session's transaction, or the connection itself."""
    return on.connection() if isinstance(on, Session) else on


def driver_fetch(conn: Connection, sql: str, params: Any) -> tuple[list[Any], Any]:
    """Run SQL on conn's driver cursor: its rows and cursor description (None: no rows).

    For the hottest statements: SQLAlchemy's per-execution bookkeeping (execution context,
    cursor result, `Row`s) costs about as much as a warm round trip. A driver error is raised
    as SQLAlchemy's own `DBAPIError`, and a lost connection is invalidated, as
    `Connection.execute` does; the cursor listeners see it (`on_driver`); no values are
    processed.
    """

    def run(cursor: Any) -> tuple[list[Any], Any]:
        cursor.execute(sql, params)
        description = cursor.description
        return (list(cursor.fetchall()) if description is not None else []), description

    return on_driver(conn, sql, params, run)


def on_driver(
    conn: Connection, sql: str, params: Any, run: Callable[[Any], T], *, many: bool = False
) -> T:
    """`run(cursor)` on conn's driver cursor, a driver error raised as SQLAlchemy's own.

    The engine's `before_cursor_execute` and `after_cursor_execute` listeners (tracing, a
    test counting statements) see `sql` as they see every statement SQLAlchemy runs; they
    observe it only (a listener's rewritten statement is not what runs).
    """
    dialect = conn.dialect
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    events = conn.dispatch
    try:
        if events.before_cursor_execute:
            events.before_cursor_execute(conn, cursor, sql, params, None, many)
        result = run(cursor)
        if events.after_cursor_execute:
            events.after_cursor_execute(conn, cursor, sql, params, None, many)
        return result
    except dialect.loaded_dbapi.Error as exc:
        gone = dialect.is_disconnect(exc, dbapi_conn, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=gone,
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()


class DriverStatement:
    """A fixed Core statement run on the driver's own cursor: writes and reads on a hot path.

    SQLAlchemy's execution bookkeeping costs about as much as a warm round trip (the worker's
    claim pays it before every job runs; a read, once per request; a group-commit batch, once
    per statement). This compiles once, binds each value through its parameter type's bind
    processor, reads each returned column (by default the statement's own: what it selects
    or returns) through its type's result processor, and returns plain tuples, or `Row`s.
    """

    def __init__(
        self,
        dialect: Dialect,
        stmt: ClauseElement,
        returning: Sequence[ColumnElement[Any]] | None = None,
    ) -> None:
        if returning is None:  # the columns the statement selects or returns
            columns = getattr(stmt, "exported_columns", None)
            returning, names = list(columns or ()), list(columns.keys() if columns else ())
        else:
            names = [c.key for c in returning]
        compiled = stmt.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if any(b.expanding for b in compiled.bind_names):
            raise ValueError("an expanding IN cannot be compiled once; use InValues or OR")
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
        self._result_processors: list[Callable[[Any], Any] | None] | None = None
        #: makes a `Row` of returned values (text(): named from the first cursor description)
        self._row = result_tuple(names) if names else None

    def _processors(self, description: Sequence[Any]) -> list[Callable[[Any], Any] | None]:
        if not self._returning:
            return [None] * len(description)
        return [
            impl.result_processor(self._dialect, col[1])
            for impl, col in zip(self._returning, description, strict=True)
        ]

    def bind(self, params: Mapping[str, Any]) -> Any:
        """The driver's parameters: the given values, each through its bind processor."""
        values = dict(self._fixed)
        for name, key, proc in self._given:
            value = params[key]
            values[name] = value if proc is None else proc(value)
        return [values[n] for n in self._order] if self._order is not None else values

    def execute(self, on: Session | Connection, params: Mapping[str, Any]) -> int:
        """Run the statement with `params` in the transaction of `on`; the rows it changed."""
        conn, bound = connection_of(on), self.bind(params)

        def run(cursor: Any) -> int:
            cursor.execute(self.sql, bound)
            return int(cursor.rowcount)

        return on_driver(conn, self.sql, bound, run)

    def execute_many(
        self, on: Session | Connection, param_sets: Sequence[Mapping[str, Any]]
    ) -> int:
        """Run the statement once per parameter set in the transaction of `on` (one round trip
        on PostgreSQL: psycopg pipelines an executemany); the rows it changed in all."""
        conn, bound = connection_of(on), [self.bind(p) for p in param_sets]

        def run(cursor: Any) -> int:
            cursor.executemany(self.sql, bound)
            return int(cursor.rowcount)

        return on_driver(conn, self.sql, bound, run, many=True)

    def fetch(self, on: Session | Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement with `params` in the transaction of `on`; the returned rows."""
        rows, description = driver_fetch(connection_of(on), self.sql, self.bind(params))
        return self._results(rows, description)

    def rows(self, on: Session | Connection, params: Mapping[str, Any]) -> list[Row[Any]]:
        """`fetch`, as SQLAlchemy `Row`s (attributes, `_mapping`) named as the statement's."""
        return self.as_rows(self.fetch(on, params))

    def scalars(self, on: Session | Connection, params: Mapping[str, Any]) -> list[Any]:
        """`fetch`'s first column."""
        return [r[0] for r in self.fetch(on, params)]

    def as_rows(self, values: list[tuple[Any, ...]]) -> list[Row[Any]]:
        """The returned values (of `fetch`) as `Row`s."""
        make = self._row
        if make is None:  # text() that has returned nothing yet: no rows to name
            assert not values
            return []
        return [make(v) for v in values]

    async def fetch_async(self, conn: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """`fetch` on a psycopg `AsyncConnection`; a driver error raised as SQLAlchemy's own."""
        bound = self.bind(params)
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(self.sql, bound)
                description = cursor.description
                rows = await cursor.fetchall() if description is not None else []
        except self._dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                self.sql,
                bound,
                exc,
                self._dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=self._dialect,
            ) from exc
        return self._results(rows, description)

    def _results(self, rows: list[Any], description: Any) -> list[tuple[Any, ...]]:
        """The driver's rows, each column through its type's result processor."""
        if description is None:
            return []
        procs = self._result_processors
        if procs is None:
            procs = self._result_processors = self._processors(description)
            if self._row is None:
                self._row = result_tuple([col[0] for col in description])
        if not any(procs):
            return [tuple(r) for r in rows]
        return [
            tuple(v if p is None or v is None else p(v) for p, v in zip(procs, r, strict=True))
            for r in rows
        ]


#: statement -> its `DriverStatement` for each dialect, for as long as the statement lives
_PREPARED: weakref.WeakKeyDictionary[
    ClauseElement, weakref.WeakKeyDictionary[Dialect, DriverStatement]
] = weakref.WeakKeyDictionary()


def prepared(dialect: Dialect, stmt: ClauseElement) -> DriverStatement:
    """`stmt` compiled once for this dialect's driver (build it once, values as bindparams)."""
    by_dialect = _PREPARED.get(stmt)
    if by_dialect is None:
        by_dialect = _PREPARED.setdefault(stmt, weakref.WeakKeyDictionary())
    driver = by_dialect.get(dialect)
    if driver is None:
        driver = by_dialect[dialect] = DriverStatement(dialect, stmt)
    return driver
