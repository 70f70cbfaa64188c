"""core.db helpers on the session database, and SQLite specifics on a throw-away file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, event, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.harness import uid
from tests.system.conftest import core_services
from writegate.core.db import Database, InValues
from writegate.core.services import Services

#: a scratch table outside Base.metadata, so migrations checks never see it
scratch = MetaData()
keys = Table("core_test_in_values", scratch, Column("k", String(64), primary_key=True))
_PICK = select(keys.c.k).where(InValues(keys.c.k, "ks"))


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, without any API module."""
    with core_services(db_url, scratch) as svc:
        yield svc


def test_in_values_matches_exactly_the_listed_values_with_one_statement(
    services: Services,
) -> None:
    """Any number of values, awkward ones included, in one parameter: one SQL text for all."""
    tag = uid()
    odd = [f"{tag}'q", f'{tag}"d', f"{tag},c]", f"{tag}\\b", f"{tag}☃ ü", f"{tag}{{x}}"]
    plain = [f"{tag}-{n}" for n in range(40)]
    with services.db.write() as s:
        s.execute(insert(keys), [{"k": k} for k in odd + plain])
    sent: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", record)
    try:
        with services.db.read() as s:
            picks = [
                set(s.scalars(_PICK, {"ks": ks}))
                for ks in ([], odd, [*plain[:3], f"{tag}-missing"], plain, odd[2:3])
            ]
    finally:
        event.remove(services.db.engine, "before_cursor_execute", record)
    assert picks == [set(), set(odd), set(plain[:3]), set(plain), {odd[2]}]
    picked = [st for st in sent if "core_test_in_values" in st]
    assert len(picked) == 5
    assert len(set(picked)) == 1  # one statement text whatever the number of values


def test_a_write_that_cannot_take_the_write_lock_raises_sqlalchemys_error(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE runs on the driver, but its failure is still SQLAlchemy's error."""
    path = tmp_path / "locked.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.write() as s:  # creates the file in WAL mode
            s.execute(text("CREATE TABLE t (x INTEGER)"))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with db.write_engine.connect() as conn:
                conn.connection.driver_connection.execute("PRAGMA busy_timeout=50")
                with pytest.raises(OperationalError, match="locked") as info:
                    conn.execute(text("INSERT INTO t VALUES (1)"))
            assert isinstance(info.value.orig, sqlite3.OperationalError)
            assert info.value.statement == "BEGIN IMMEDIATE"
        finally:
            holder.rollback()
            holder.close()
        with db.write() as s:  # the lock is free again: writes go on
            s.execute(text("INSERT INTO t VALUES (2)"))
        with db.read() as s:
            assert s.scalar(text("SELECT count(*) FROM t")) == 1
    finally:
        db.dispose()


def test_a_statement_commits_by_itself_and_on_postgresql_without_a_transaction_block(
    services: Services,
) -> None:
    """`Database.statement()`: what succeeded is committed at once; a failure writes nothing."""
    tag = uid()
    seen: list[bool] = []

    def record(conn: Any, *_: Any) -> None:
        raw = conn.connection.driver_connection
        # PostgreSQL: psycopg in autocommit; SQLite: inside the BEGIN IMMEDIATE transaction.
        seen.append(raw.autocommit is True if services.db.is_postgres else raw.in_transaction)

    event.listen(services.db.engine, "before_cursor_execute", record)
    try:
        with services.db.statement() as conn:
            conn.execute(insert(keys), [{"k": f"{tag}-a"}, {"k": f"{tag}-b"}])
        with pytest.raises(IntegrityError), services.db.statement() as conn:
            conn.execute(insert(keys), [{"k": f"{tag}-c"}, {"k": f"{tag}-a"}])
    finally:
        event.remove(services.db.engine, "before_cursor_execute", record)
    with services.db.read() as s:
        stored = set(s.scalars(select(keys.c.k).where(keys.c.k.startswith(tag))))
    assert stored == {f"{tag}-a", f"{tag}-b"}  # the failed multi-row INSERT left no row
    # PostgreSQL: the driver runs them in autocommit, so it sends no BEGIN and no COMMIT.
    assert seen == [True, True]
