"""Which reads `BatchedSelect` gathers into one statement, and the statement it builds."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite

from writegate.core.db.batched import BatchedSelect

table = Table(
    "t",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("tag", String(8)),
    Column("doc", JSON),
)
PG = postgresql.psycopg.dialect()  # type: ignore[attr-defined]


def test_a_select_with_typed_parameters_on_postgresql_is_batched_lateral_per_set() -> None:
    """Each parameter becomes a typed column of the sets; LIMIT stays per set."""
    query = select(table.c.id).where(table.c.tag == bindparam("tag")).limit(1)
    batched = BatchedSelect.of(PG, query)
    assert batched is not None
    sql = batched.driver.sql
    assert "json_to_recordset" in sql
    assert "AS _p(_writegate_n INTEGER, tag VARCHAR(8))" in sql
    assert "JOIN LATERAL" in sql
    assert "t.tag = _p.tag" in sql
    assert "LIMIT" in sql
    assert batched.params([{"tag": "a"}, {"tag": None}]) == {
        "_sets": '[{"_writegate_n": 0, "tag": "a"}, {"_writegate_n": 1, "tag": null}]'
    }
    assert batched.split([(1, "x"), (0, "y"), (1, "z")], 3) == [[("y",)], [("x",), ("z",)], []]


def test_statements_that_cannot_be_batched_are_run_alone() -> None:
    """SQLite, text(), no parameters, an untyped or a JSON parameter: no batched form."""
    by_tag = select(table.c.id).where(table.c.tag == bindparam("tag"))
    assert BatchedSelect.of(sqlite.dialect(), by_tag) is None
    assert BatchedSelect.of(PG, text("SELECT 1")) is None
    assert BatchedSelect.of(PG, select(table.c.id)) is None
    assert BatchedSelect.of(PG, select(table.c.id, bindparam("untyped"))) is None
    assert BatchedSelect.of(PG, select(table.c.id).where(table.c.doc == bindparam("d"))) is None
    assert BatchedSelect.of(PG, by_tag) is not None
