"""SQL shortcuts for hot statements: batch inserts, statements run on the driver's cursor."""

from __future__ import annotations

import decimal
import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from datetime import time as time_
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, ColumnElement

T = TypeVar("T")


class BatchInsert:
    """A multi-row INSERT run straight on the driver connection: one statement per batch.

    For hot paths, where SQLAlchemy's per-row parameter handling costs more than the
    database's own work. Every value goes through its column type's own bind processor (and
    cast), so rows are stored exactly as an ORM or Core insert would store them. On SQLite
    it is a multi-row VALUES; on PostgreSQL the rows travel as one JSON document read by
    `json_to_recordset` into each column's type. Column defaults are not applied: give
    every column.

    `key` names a column whose values `execute` returns for the rows written (inserted, or
    updated by the tail's ON CONFLICT), as `RETURNING key` would: a column the conflict
    cannot change, such as its target or a new row's id.
    """

    def __init__(
        self,
        dialect: Dialect,
        table: Table,
        columns: Sequence[str],
        tail: str,
        key: str | None = None,
    ) -> None:
        q = dialect.identifier_preparer
        names = ", ".join(q.quote(c) for c in columns)
        head = f"INSERT INTO {q.format_table(table)} ({names}) "
        tail = f" {tail}" if tail else ""
        self._columns = tuple(columns)
        self._key = None if key is None else self._columns.index(key)
        returning = f" RETURNING {q.quote(key)}" if key else ""
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
                f"{head}SELECT {picked} FROM json_to_recordset(%s::json) "
                f"AS t({defined}){tail}{returning}"
            )
        else:
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            self._values_head, self._tail, self._returning = f"{head}VALUES ", tail, returning
            self._row = f"({', '.join([mark] * len(columns))})"
        self._sql: dict[tuple[int, bool], str] = {}

    def sql(self, n: int, *, returning: bool = True) -> str:
        """The statement for n rows (without its `RETURNING key`: SQLite's quiet form)."""
        if self._as_json:
            return self._recordset
        sql = self._sql.get((n, returning))
        if sql is None:
            values = ", ".join([self._row] * n)
            end = self._returning if returning else ""
            sql = self._sql[n, returning] = f"{self._values_head}{values}{self._tail}{end}"
        return sql

    def execute(self, on: Session | Connection, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Insert rows (one value per column, in order) in the transaction of `on`."""
        if not rows:
            return []
        conn = _connection(on)
        if self._as_json:
            names = self._columns
            doc = [
                dict(zip(names, row, strict=True))
                for row in zip(*self._by_column(rows), strict=True)
            ]
            return self._run(
                conn, len(rows), [json.dumps(doc, default=json_scalar, allow_nan=False)]
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
            if self._key is None:
                out += self._run(conn, len(chunk), self._flat(chunk))
            else:
                out += self._keys_written(conn, chunk)
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

    def _keys_written(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """SQLite: the rows' keys if every row was written, else what `RETURNING key` gives.

        The sqlite3 module gives up the GIL for each row a statement steps through, and on a
        commit thread each one waits to win it back from the busy event loop: a batch's
        RETURNING rows cost more than its INSERT. The quiet INSERT is one step, and when it
        wrote fewer rows than given (a conflict), a savepoint undoes it for the RETURNING form.
        """
        n, key = len(rows), self._key
        assert key is not None
        params, quiet = self._flat(rows), self.sql(n, returning=False)

        def run(cursor: Any) -> list[Any]:
            cursor.execute("SAVEPOINT writegate_batch_insert")
            try:
                cursor.execute(quiet, params)
                if cursor.rowcount == n:
                    return [(row[key],) for row in rows]
                cursor.execute("ROLLBACK TO writegate_batch_insert")
                cursor.execute(self.sql(n), params)
                return list(cursor.fetchall())
            except BaseException:
                cursor.execute("ROLLBACK TO writegate_batch_insert")
                raise
            finally:
                cursor.execute("RELEASE writegate_batch_insert")

        return _on_driver(conn, quiet, params, run)


def _connection(on: Session | Connection) -> Connection:
    """The connection of a session's transaction, or the connection itself."""
    return on.connection() if isinstance(on, Session) else on


def driver_fetch(conn: Connection, sql: str, params: Any) -> tuple[list[Any], Any]:
    """Run SQL on conn's driver cursor: its rows and cursor description (None: no rows).

    For the hottest statements: SQLAlchemy's per-execution bookkeeping (execution context,
    cursor result, `Row`s) costs about as much as a warm round trip. A driver error is raised
    as SQLAlchemy's own `DBAPIError`, and a lost connection is invalidated, as
    `Connection.execute` does; no events fire and no values are processed.
    """

    def run(cursor: Any) -> tuple[list[Any], Any]:
        cursor.execute(sql, params)
        description = cursor.description
        return (list(cursor.fetchall()) if description is not None else []), description

    return _on_driver(conn, sql, params, run)


def _on_driver(conn: Connection, sql: str, params: Any, run: Callable[[Any], T]) -> T:
    """`run(cursor)` on conn's driver cursor, a driver error raised as SQLAlchemy's own."""
    dialect = conn.dialect
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        return run(cursor)
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
    """A fixed Core statement run on the driver's own cursor: hot writes and every read.

    SQLAlchemy's execution bookkeeping costs about as much as a warm round trip (the worker's
    claim pays it before every job runs; a read, once per request). This compiles once,
    binds each value through its parameter type's bind processor, reads each returned column
    through its type's result processor, and returns plain tuples.
    """

    def __init__(
        self, dialect: Dialect, stmt: ClauseElement, returning: Sequence[ColumnElement[Any]] = ()
    ) -> None:
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
        #: the returned columns' names, known from the first cursor description
        self.names: tuple[str, ...] = ()

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
        conn, bound = _connection(on), self.bind(params)

        def run(cursor: Any) -> int:
            cursor.execute(self.sql, bound)
            return int(cursor.rowcount)

        return _on_driver(conn, self.sql, bound, run)

    def execute_many(
        self, on: Session | Connection, param_sets: Sequence[Mapping[str, Any]]
    ) -> int:
        """Run the statement once per parameter set in the transaction of `on` (one round trip
        on PostgreSQL: psycopg pipelines an executemany); the rows it changed in all."""
        conn, bound = _connection(on), [self.bind(p) for p in param_sets]

        def run(cursor: Any) -> int:
            cursor.executemany(self.sql, bound)
            return int(cursor.rowcount)

        return _on_driver(conn, self.sql, bound, run)

    def fetch(self, on: Session | Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement with `params` in the transaction of `on`; the returned rows."""
        rows, description = driver_fetch(_connection(on), self.sql, self.bind(params))
        return self._results(rows, description)

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
                self.sql, bound, exc, self._dialect.loaded_dbapi.Error, dialect=self._dialect
            ) from exc
        return self._results(rows, description)

    def _results(self, rows: list[Any], description: Any) -> list[tuple[Any, ...]]:
        """The driver's rows, each column through its type's result processor."""
        if description is None:
            return []
        procs = self._result_processors
        if procs is None:
            procs = self._result_processors = self._processors(description)
            self.names = tuple(col[0] for col in description)
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
    return None if value is None else json_scalar(value)


def json_scalar(value: Any) -> Any:
    """A bound value JSON cannot carry, as the text PostgreSQL reads for its column type."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # writegate stores naive UTC
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, date | time_ | uuid.UUID | decimal.Decimal):
        return str(value)
    raise TypeError(f"cannot send a {type(value).__name__} in a batch")


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
