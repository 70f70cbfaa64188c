"""One SELECT for many callers' parameters at once (PostgreSQL): reads that share a trip."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Integer, Select, Text, bindparam, cast, column, func, select, true
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import NullType

from writegate.core.db.batch import BatchRows
from writegate.core.db.fastsql import DriverStatement

#: the column that numbers the parameter sets (a name no statement of writegate selects)
_N = "_writegate_n"


class BatchedSelect:
    """`statement` for many parameter sets in one round trip: `LATERAL` once per set.

    The sets travel as one JSON document, read by `json_to_recordset` into each parameter's
    type (as `BatchInsert`'s rows do); each parameter of the statement becomes that row's
    column, so each set gets exactly the rows (and the order, the `LIMIT`) the statement
    alone gives it. PostgreSQL parses, plans and answers the batch once.
    """

    def __init__(self, dialect: Dialect, statement: Select[Any], keys: Sequence[str]) -> None:
        given = _given(statement)
        self._keys = list(keys)
        #: the sets, numbered, as `BatchInsert` sends its rows
        self._rows = BatchRows(
            dialect, [(_N, Integer()), *((k, given[k].type) for k in self._keys)]
        )
        sets = (
            func.json_to_recordset(cast(bindparam("_sets", type_=Text), JSON))
            .table_valued(column(_N, Integer), *(column(k, given[k].type) for k in self._keys))
            .render_derived("_p", with_types=True)
        )

        def by_set(el: Any) -> Any:
            return sets.c[el.key] if isinstance(el, BindParameter) and el.key in given else None

        replaced = visitors.replacement_traverse(statement, {}, by_set)  # type: ignore[call-overload]
        each = typing.cast("Select[Any]", replaced).lateral("_q")
        both = select(sets.c[_N], *each.c).select_from(sets.join(each, true()))
        self.driver = DriverStatement(
            dialect, both, returning=[sets.c[_N], *statement.selected_columns]
        )

    @classmethod
    def of(cls, dialect: Dialect, statement: Any) -> BatchedSelect | None:
        """The batched form of a SELECT whose parameters all have a SQL type, else None."""
        if dialect.name != "postgresql" or not isinstance(statement, Select):
            return None
        given = _given(statement)
        if not given or any(
            isinstance(b.type, NullType | JSON) or b.expanding for b in given.values()
        ):
            return None
        return cls(dialect, statement, sorted(given))

    def params(self, sets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The one parameter of the batch: every set, each value through its bind processor."""
        rows = [(n, *(values[k] for k in self._keys)) for n, values in enumerate(sets)]
        return {"_sets": self._rows.params(rows)[0]}

    @staticmethod
    def split(rows: list[tuple[Any, ...]], n: int) -> list[list[tuple[Any, ...]]]:
        """The batch's rows as each set's own, in the order the statement gave them."""
        out: list[list[tuple[Any, ...]]] = [[] for _ in range(n)]
        for row in rows:
            out[row[0]].append(row[1:])
        return out


def _given(statement: Select[Any]) -> dict[str, BindParameter[Any]]:
    """The parameters a caller gives (not literal values), by key."""
    given: dict[str, BindParameter[Any]] = {}
    for el in visitors.iterate(statement):
        if isinstance(el, BindParameter) and (el.required or el.callable is not None):
            given.setdefault(el.key, el)
    return given
