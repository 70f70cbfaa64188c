"""Many rows in one statement on the driver: a batch's INSERT, a batch's UPDATE by key."""

from __future__ import annotations

import decimal
import json
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from datetime import time as time_
from typing import Any

from sqlalchemy import JSON, DateTime, Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from writegate.core.db.fastsql import connection_of, driver_fetch, on_driver


class BatchRows:
    """Rows of fixed, typed columns sent with one statement, each value bound through its
    type (and cast), so they are stored exactly as an ORM or Core write would store them.

    On SQLite a multi-row VALUES; on PostgreSQL the rows travel as one JSON document read by
    `json_to_recordset` into each column's type: one short statement serves every batch
    size (the driver caches and prepares it; a long VALUES list is re-parsed on each call)
    and the driver dumps one string (typed arrays cost ~15 us a row).
    """

    def __init__(self, dialect: Dialect, typed: Sequence[tuple[str, TypeEngine[Any]]]) -> None:
        q = dialect.identifier_preparer
        columns = self.columns = tuple(name for name, _ in typed)
        self.as_json = dialect.name == "postgresql"
        processors: list[Callable[[Any], Any] | None] = []
        types, impls, kinds = [], [], [kind for _, kind in typed]
        for kind in kinds:
            impl = kind.dialect_impl(dialect)
            impls.append(impl)
            processors.append(impl.bind_processor(dialect))
            types.append(dialect.type_compiler_instance.process(impl))
        if self.as_json:
            # A JSON column's value travels nested in the document, which is serialized once
            # (as its own text it was serialized twice, and escaped): the column stores the
            # text json.dumps gives it, as the JSON type does on writegate's engines (no
            # custom serializer). Every other value is made one JSON carries by its column's
            # type first, so that a value JSON cannot carry inside a JSON column (a datetime
            # in a payload) raises, as on every other path.
            processors = [
                None if isinstance(k, JSON) else _to_json(k, impl, p)
                for k, impl, p in zip(kinds, impls, processors, strict=True)
            ]
            #: each column as read from the recordset `t`, in its own type
            self.picked = {
                c: _picked(f"t.{q.quote(c)}", k, t)
                for c, k, t in zip(columns, kinds, types, strict=True)
            }
            defined = ", ".join(f"{q.quote(c)} {t}" for c, t in zip(columns, types, strict=True))
            #: the rows as a table `t` (one parameter: `params`'s JSON document)
            self.recordset = f"json_to_recordset(%s::json) AS t({defined})"
        else:
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            self.row = f"({', '.join([mark] * len(columns))})"
        self._processors = processors

    def values(self, n: int) -> str:
        """SQLite: a VALUES list of n rows."""
        return ", ".join([self.row] * n)

    def params(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """The statement's parameters for rows (one value per column, in order)."""
        by_column = [
            _processed(p, col)
            for p, col in zip(self._processors, zip(*rows, strict=True), strict=True)
        ]
        if self.as_json:
            doc = [
                dict(zip(self.columns, row, strict=True)) for row in zip(*by_column, strict=True)
            ]
            return [json.dumps(doc, allow_nan=False)]
        return [v for row in zip(*by_column, strict=True) for v in row]

    def chunks(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """rows in statements of at most as many values as the database binds at once."""
        if self.as_json:
            return [rows]
        # A statement binds at most SQLITE_LIMIT_VARIABLE_NUMBER values (32,766 by default).
        raw = conn.connection.driver_connection
        if isinstance(raw, sqlite3.Connection):
            limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        else:
            limit = 32_766
        per = max(1, limit // len(self.columns))
        return [rows[start : start + per] for start in range(0, len(rows), per)]


class BatchInsert:
    """A multi-row INSERT run straight on the driver connection: one statement per batch.

    For hot paths, where SQLAlchemy's per-row parameter handling costs more than the
    database's own work (rows as `BatchRows` sends them). Column defaults are not applied: give
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
        self._rows = BatchRows(dialect, [(c, table.c[c].type) for c in columns])
        names = ", ".join(q.quote(c) for c in columns)
        head = f"INSERT INTO {q.format_table(table)} ({names}) "
        tail = f" {tail}" if tail else ""
        self._key = None if key is None else self._rows.columns.index(key)
        returning = f" RETURNING {q.quote(key)}" if key else ""
        if self._rows.as_json:
            picked = ", ".join(self._rows.picked.values())
            self._recordset = f"{head}SELECT {picked} FROM {self._rows.recordset}{tail}{returning}"
        else:
            self._values_head, self._tail, self._returning = f"{head}VALUES ", tail, returning
        self._sql: dict[tuple[int, bool], str] = {}

    def sql(self, n: int, *, returning: bool = True) -> str:
        """The statement for n rows (without its `RETURNING key`: SQLite's quiet form)."""
        if self._rows.as_json:
            return self._recordset
        sql = self._sql.get((n, returning))
        if sql is None:
            end = self._returning if returning else ""
            sql = f"{self._values_head}{self._rows.values(n)}{self._tail}{end}"
            self._sql[n, returning] = sql
        return sql

    def execute(self, on: Session | Connection, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Insert rows (one value per column, in order) in the transaction of `on`."""
        if not rows:
            return []
        conn = connection_of(on)
        out: list[Any] = []
        for chunk in self._rows.chunks(conn, rows):
            if self._key is None or self._rows.as_json:
                out += driver_fetch(conn, self.sql(len(chunk)), self._rows.params(chunk))[0]
            else:
                out += self._keys_written(conn, chunk)
        return out

    def _keys_written(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """SQLite: the rows' keys if every row was written, else what `RETURNING key` gives.

        The sqlite3 module gives up the GIL for each row a statement steps through, and each
        one waits to win it back from whichever thread took it (on a commit thread, the busy
        event loop): a batch's RETURNING rows cost more than its INSERT. The quiet INSERT is
        one step, and when it wrote fewer rows than given (a conflict), a savepoint undoes it
        for the RETURNING form.
        """
        n, key = len(rows), self._key
        assert key is not None
        params, quiet = self._rows.params(rows), self.sql(n, returning=False)

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

        return on_driver(conn, quiet, params, run)


class BatchUpdate:
    """An UPDATE of many rows by key, on the driver: one statement per batch.

    Each row gives its key first, then the new value of every other column (through `BatchRows`,
    as a `BatchInsert`'s). Where an executemany runs the UPDATE once per row (SQLAlchemy's
    bookkeeping for each, and on PostgreSQL a pipeline of as many statements), this is one
    `UPDATE ... FROM` the rows. A key given twice updates its row from either: give each once.
    """

    def __init__(self, dialect: Dialect, table: Table, key: str, columns: Sequence[str]) -> None:
        q = dialect.identifier_preparer
        self._rows = BatchRows(dialect, [(c, table.c[c].type) for c in (key, *columns)])
        name = q.format_table(table)
        if self._rows.as_json:
            picked = self._rows.picked
            sets = ", ".join(f"{q.quote(c)} = {picked[c]}" for c in columns)
            # PostgreSQL plans a function as 100 rows, however few the batch has: against a
            # table of some thousands it hashed the rows and scanned the whole table. The
            # LIMIT (the batch's own count, a parameter) tells it how few there are, so it
            # looks each one up by the key's index.
            self._sql = (
                f"UPDATE {name} SET {sets} FROM (SELECT * FROM {self._rows.recordset} "
                f"LIMIT %s) AS t WHERE {name}.{q.quote(key)} = {picked[key]}"
            )
        else:  # a VALUES list's columns are column1, column2, ...
            sets = ", ".join(f"{q.quote(c)} = v.column{i}" for i, c in enumerate(columns, 2))
            self._head = f"UPDATE {name} SET {sets} FROM (VALUES "
            self._where = f") AS v WHERE {name}.{q.quote(key)} = v.column1"

    def sql(self, n: int) -> str:
        """The statement for n rows."""
        if self._rows.as_json:
            return self._sql
        return f"{self._head}{self._rows.values(n)}{self._where}"

    def execute(self, on: Session | Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Update the rows (key, then each column's value) in the transaction of `on`; the
        number of rows changed."""
        if not rows:
            return 0
        conn = connection_of(on)
        changed = 0
        for chunk in self._rows.chunks(conn, rows):
            sql, params = self.sql(len(chunk)), self._rows.params(chunk)
            if self._rows.as_json:
                params.append(len(chunk))  # the LIMIT

            def run(cursor: Any, sql: str = sql, params: list[Any] = params) -> int:
                cursor.execute(sql, params)
                return int(cursor.rowcount)

            changed += on_driver(conn, sql, params, run)
        return changed


def _to_json(
    kind: TypeEngine[Any], impl: TypeEngine[Any], processor: Callable[[Any], Any] | None
) -> Callable[[Any], Any] | None:
    """A column's processor into a value JSON carries (None: its values already are)."""
    if processor is not None:
        return processor
    if isinstance(kind, DateTime):
        return _iso
    try:
        native = impl.python_type in (str, int, float, bool)
    except NotImplementedError:
        native = False
    return None if native else _scalar


def _picked(column: str, kind: TypeEngine[Any], sql_type: str) -> str:
    """A recordset column as its table's column stores it."""
    if isinstance(kind, JSON) and not kind.none_as_null:
        # The document's null is SQL NULL in the recordset; this column stores None as JSON's
        # null, as SQLAlchemy's JSON type does.
        return f"COALESCE({column}, 'null'::{sql_type})"
    return column


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float) else _json_scalar(value)


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
