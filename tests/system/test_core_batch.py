"""core.db.batch: `BatchUpdate`, many rows by key in one statement, on the session database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import (
    MetaData,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from tests.harness import uid
from tests.system.conftest import core_services
from tests.system.typedrows import EVERY_TYPE, typed_table
from writegate.core.db import BatchUpdate
from writegate.core.services import Services

scratch = MetaData()
typed = typed_table("core_test_batch_update", scratch, note_nullable=False)
COLUMNS = [c.name for c in typed.columns if c.name != "id"]
VALUE = EVERY_TYPE


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, with the scratch table."""
    with core_services(db_url, scratch) as svc:
        yield svc


def _add(services: Services, ids: list[str]) -> None:
    with services.db.write() as s:
        s.execute(insert(typed), [{"id": i, "note": "before"} for i in ids])


def _read(services: Services, ids: list[str]) -> dict[str, dict[str, object]]:
    with services.db.read() as s:
        rows = s.execute(select(typed).where(typed.c.id.in_(ids)))
        return {r.id: {k: v for k, v in r._asdict().items() if k != "id"} for r in rows}


def test_batch_update_stores_every_column_type_as_a_core_update_does(services: Services) -> None:
    """Each value through its column's type, NULLs included; rows not named stay as they were."""
    core, fast, cleared, other = (uid(p) for p in ("core-", "fast-", "cleared-", "other-"))
    _add(services, [core, fast, cleared, other])
    batch = BatchUpdate(services.db.engine.dialect, typed, "id", COLUMNS)
    nothing = dict.fromkeys(COLUMNS) | {"note": ""}
    with services.db.write() as s:
        s.execute(update(typed).where(typed.c.id == core).values(VALUE))
        changed = batch.execute(
            s,
            [
                [fast, *(VALUE[c] for c in COLUMNS)],
                [cleared, *(nothing[c] for c in COLUMNS)],
                [uid("no-such-"), *(VALUE[c] for c in COLUMNS)],
            ],
        )
    assert changed == 2
    got = _read(services, [core, fast, cleared, other])
    assert got[fast] == VALUE
    assert got[core] == VALUE
    assert got[cleared] == nothing
    assert got[other] == dict.fromkeys(COLUMNS) | {"note": "before"}


def test_batch_update_past_the_bound_values_limit_updates_every_row(services: Services) -> None:
    """SQLite binds at most 32,766 values a statement: 4,000 rows of 10 go in two."""
    ids = [uid(f"many-{i}-") for i in range(4000)]
    _add(services, ids)
    batch = BatchUpdate(services.db.engine.dialect, typed, "id", COLUMNS)
    with services.db.write() as s:
        changed = batch.execute(s, [[i, *(VALUE[c] for c in COLUMNS[:-1]), i] for i in ids])
    assert changed == 4000
    got = _read(services, [ids[0], ids[-1]])
    assert got[ids[-1]]["note"] == ids[-1]
    assert got[ids[0]]["amount"] == VALUE["amount"]


def test_batch_update_failure_is_sqlalchemys_error_and_writes_nothing(services: Services) -> None:
    """A row the table refuses (a NULL in a NOT NULL column) fails the statement as a whole."""
    first, second = uid("first-"), uid("second-")
    _add(services, [first, second])
    batch = BatchUpdate(services.db.engine.dialect, typed, "id", ["note"])
    with pytest.raises(IntegrityError) as info, services.db.write() as s:
        batch.execute(s, [[first, "changed?"], [second, None]])
    assert info.value.statement == batch.sql(2)
    assert not info.value.connection_invalidated
    assert {k: v["note"] for k, v in _read(services, [first, second]).items()} == {
        first: "before",
        second: "before",
    }


def test_statements_on_the_driver_are_seen_by_the_engines_cursor_listeners(
    services: Services,
) -> None:
    """A batch statement fires before/after_cursor_execute as a Core statement does (tracing)."""
    first = uid("seen-")
    _add(services, [first])
    batch = BatchUpdate(services.db.engine.dialect, typed, "id", ["note"])
    seen: list[tuple[str, str]] = []
    engine = services.db.engine

    def before(_c: object, _cur: object, sql: str, *_rest: object) -> None:
        seen.append(("before", sql))

    def after(_c: object, _cur: object, sql: str, *_rest: object) -> None:
        seen.append(("after", sql))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        with services.db.write() as s:
            batch.execute(s, [[first, "seen"]])
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    mine = [(when, sql) for when, sql in seen if sql == batch.sql(1)]
    assert mine == [("before", batch.sql(1)), ("after", batch.sql(1))]
