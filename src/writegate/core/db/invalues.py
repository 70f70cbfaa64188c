"""`InValues`: a column IN a list bound as one parameter (no ORM: the CLI's statements use it)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, String, TypeDecorator, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal


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
