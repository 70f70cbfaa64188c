"""core.db helpers on the session database, and SQLite specifics on a throw-away file."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from tests.harness import uid
from tests.system.conftest import core_services
from writegate.core.db import Database, DriverStatement, InValues, prepared
from writegate.core.db import engine as db_engine
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


def test_regression_the_wal_kept_the_size_a_long_read_made_it_grow_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: a long read (a backup, an operator's shell) holds the checkpoint back and the
    WAL grows under writes (317 MB in a minute under load); afterwards it kept that size for
    good. Once a checkpoint has emptied it, the WAL is truncated to `WAL_SIZE_LIMIT`."""
    monkeypatch.setattr(db_engine, "WAL_SIZE_LIMIT", 256 * 1024)
    path = tmp_path / "wal.db"
    db = Database(f"sqlite:///{path}")
    wal = Path(f"{path}-wal")
    try:
        with db.write() as s:
            s.execute(text("CREATE TABLE t (x TEXT)"))
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()  # its snapshot holds the WAL
        for _ in range(40):
            with db.write() as s:
                s.execute(text("INSERT INTO t VALUES (:x)"), {"x": "x" * 100_000})
        grown = wal.stat().st_size
        assert grown > 4_000_000
        reader.rollback()
        reader.close()
        for _ in range(2):  # a checkpoint empties the WAL; the next write starts it anew
            with db.write() as s:  # its commit checkpoints (the WAL is past 1,000 pages)
                s.execute(text("INSERT INTO t VALUES ('y')"))
        assert wal.stat().st_size <= 256 * 1024, (grown, wal.stat().st_size)
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


typed = Table(
    "core_test_driver",
    scratch,
    Column("id", String(64), primary_key=True),
    Column("ts", DateTime),
    Column("amount", Numeric(12, 3)),
    Column("flag", Boolean),
    Column("n", Integer),
    Column("doc", JSON),
    Column("note", String(200)),
)
_TOUCH = (
    update(typed)
    .where(InValues(typed.c.id, "p_ids"), typed.c.n < 100)
    .values(
        ts=bindparam("p_ts", type_=DateTime),
        n=typed.c.n + 1,
        note=bindparam("p_note"),
        doc=bindparam("p_doc", type_=JSON),
    )
    .returning(*typed.c)
)


def test_driver_statement_binds_and_reads_every_column_type_as_core_execute_does(
    services: Services,
) -> None:
    """DriverStatement: the same rows, values and stored data as `Connection.execute`."""
    fast = DriverStatement(services.db.engine.dialect, _TOUCH, list(typed.c))
    base = {"amount": Decimal("12.500"), "flag": True, "n": 1}
    a, b = uid("drv-"), uid("core-")
    with services.db.write() as s:
        s.execute(insert(typed), [{"id": a, **base}, {"id": b, **base}])
    change = {
        "p_ts": datetime(2031, 2, 3, 4, 5, 6, 7),
        "p_note": "it's \\ a, {note}",
        "p_doc": {"k": ['a"b', None, 1.5], "naïve": "☃"},
    }
    with services.db.write() as s:
        got = fast.fetch(s.connection(), {"p_ids": [a], **change})
        want = [tuple(r) for r in s.execute(_TOUCH, {"p_ids": [b], **change})]
    assert [r[1:] for r in got] == [r[1:] for r in want]
    assert got[0][0] == a
    assert got[0][1:] == (
        change["p_ts"], Decimal("12.500"), True, 2, change["p_doc"], change["p_note"]
    )  # fmt: skip
    with services.db.read() as s:
        stored = {
            r.id: tuple(r)[1:] for r in s.execute(select(typed).where(typed.c.id.in_([a, b])))
        }
    assert stored[a] == stored[b] == got[0][1:]
    with services.db.write() as s:  # no row matches: no rows, nothing written
        assert fast.fetch(s.connection(), {"p_ids": [uid("none-")], **change}) == []


def test_prepared_statement_gives_the_rows_core_execute_gives(services: Services) -> None:
    """`prepared`: compiled once per statement and dialect; the statement's own columns come
    back as Core's `Row`s (names, processed values), from a SELECT and from a RETURNING."""
    dialect = services.db.engine.dialect
    by_ids = select(typed).where(InValues(typed.c.id, "p_ids")).order_by(typed.c.id)
    assert prepared(dialect, by_ids) is prepared(dialect, by_ids)
    assert prepared(dialect, by_ids) is not prepared(dialect, _TOUCH)
    ids = sorted(uid("prep-") for _ in range(3))
    with services.db.write() as s:
        s.execute(insert(typed), [{"id": i, "amount": Decimal("1.250"), "n": 1} for i in ids])
    change = {"p_ts": datetime(2032, 1, 2, 3, 4, 5), "p_note": "n", "p_doc": {"a": [1]}}
    with services.db.write() as s:
        touched = prepared(dialect, _TOUCH).rows(s.connection(), {"p_ids": ids[:2], **change})
    assert sorted((r.id, r.ts, r.n, r.doc) for r in touched) == [
        (i, change["p_ts"], 2, change["p_doc"]) for i in ids[:2]
    ]
    with services.db.read() as s:
        want = s.execute(by_ids, {"p_ids": ids}).all()
        got = prepared(dialect, by_ids).rows(s.connection(), {"p_ids": ids})
        assert prepared(dialect, by_ids).scalars(s.connection(), {"p_ids": ids}) == ids
    assert got == want
    assert [r._mapping for r in got] == [r._mapping for r in want]
    assert got[0].amount == Decimal("1.250")
    assert got[0].ts == change["p_ts"]


def test_driver_statement_failure_is_sqlalchemys_error_and_writes_nothing(
    services: Services,
) -> None:
    """A driver error comes out as SQLAlchemy's, with the statement, as execute() would raise."""
    fast = DriverStatement(
        services.db.engine.dialect,
        insert(typed).values(id=bindparam("p_id"), note="x").returning(typed.c.id),
    )
    taken = uid("taken-")
    with services.db.write() as s:
        assert fast.fetch(s.connection(), {"p_id": taken}) == [(taken,)]
    fresh = uid("fresh-")

    def both(s: Session) -> None:
        s.execute(insert(typed).values(id=fresh))
        fast.fetch(s.connection(), {"p_id": taken})

    with pytest.raises(IntegrityError) as info:
        _in_one_write(services, both)
    assert info.value.statement == fast.sql
    assert not info.value.connection_invalidated
    with services.db.read() as s:
        assert s.scalar(select(typed.c.id).where(typed.c.id == fresh)) is None


def _in_one_write(services: Services, fn: Any) -> None:
    with services.db.write() as s:
        fn(s)


def test_driver_statement_invalidates_a_lost_connection(services: Services) -> None:
    """PostgreSQL: a killed backend is SQLAlchemy's disconnect error; the pool replaces it."""
    if not services.db.is_postgres:
        pytest.skip("a killed server backend is PostgreSQL's")
    fast = DriverStatement(
        services.db.engine.dialect, select(typed.c.id).where(typed.c.id == bindparam("p_id"))
    )
    with services.db.write_engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with services.db.read() as s:
            s.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(DBAPIError) as info:
            fast.fetch(conn, {"p_id": "x"})
        assert info.value.connection_invalidated
        assert conn.invalidated
    with services.db.write() as s:  # the next checkout is a live connection
        assert fast.fetch(s.connection(), {"p_id": "x"}) == []


def test_regression_an_autocommit_statement_on_a_connection_pinged_after_idling(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the idle ping left psycopg in a transaction, so `statement()` failed.

    Any checkout after a second's idle pings the connection; a plain SELECT began a
    transaction, and switching that connection to autocommit raised ProgrammingError (a
    worker's threaded claim then failed and slept a poll interval). The ping still replaces
    a dead connection.
    """
    if not db_url.startswith("postgresql"):
        pytest.skip("the idle ping is PostgreSQL's (SQLite has no server to lose)")
    monkeypatch.setattr(db_engine, "IDLE_PING_SECONDS", 0.01)
    db = Database(db_url, pool_size=1)
    try:
        with db.statement() as conn:
            first = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        time.sleep(0.05)
        with db.statement() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == first
            assert conn.connection.driver_connection.autocommit is True
        dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (first,))
        time.sleep(0.05)
        with db.statement() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != first
    finally:
        db.dispose()


def test_driver_statement_refuses_an_expanding_in(tmp_path: Path) -> None:
    """An expanding IN renders per call, so it cannot be compiled once."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(ValueError, match="InValues"):
            DriverStatement(db.engine.dialect, select(typed.c.id).where(typed.c.id.in_(["a"])))
    finally:
        db.dispose()


def test_regression_a_database_errors_text_carried_the_values_it_was_given(
    services: Services,
) -> None:
    """A database error's text (logged as "database unavailable: ...") held every parameter
    of its statement: clients' e-mails, whole ABS packages, tokens. Neither SQLAlchemy's
    execute nor the driver path (`DriverStatement`) puts them in it now (the server's own
    message may still name the key it refused)."""
    taken, secret = uid("taken-"), uid("secret-value-")
    with services.db.write() as s:
        s.execute(insert(typed).values(id=taken))
    with pytest.raises(IntegrityError) as core_error:
        _in_one_write(services, lambda s: s.execute(insert(typed).values(id=taken, note=secret)))
    fast = DriverStatement(
        services.db.engine.dialect,
        insert(typed).values(id=bindparam("p_id"), note=bindparam("p_note")),
    )
    with pytest.raises(IntegrityError) as driver_error:
        _in_one_write(services, lambda s: fast.execute(s, {"p_id": taken, "p_note": secret}))
    for error in (core_error.value, driver_error.value):
        assert secret not in str(error)
        assert "INSERT INTO core_test_driver" in str(error)
