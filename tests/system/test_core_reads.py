"""core.db.reads: the async read path, on the session database and on a private cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

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
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.harness import backend, uid
from tests.system.conftest import core_services
from tests.system.faults import private_postgres
from writegate.core.db import Database, Reads, read_pool
from writegate.core.services import Services

scratch = MetaData()
rows = Table(
    "core_test_reads",
    scratch,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tag", String(64), index=True),
)
typed = Table(
    "core_test_reads_typed",
    scratch,
    Column("id", String(32), primary_key=True),
    Column("ts", DateTime),
    Column("amount", Numeric(12, 3)),
    Column("flag", Boolean),
    Column("doc", JSON),
    Column("note", String(200)),
)
BY_TAG = select(rows.c.id).where(rows.c.tag == bindparam("tag")).order_by(rows.c.id)
COUNT = select(func.count()).select_from(rows).where(rows.c.tag == bindparam("tag"))


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, with the scratch table."""
    with core_services(db_url, scratch) as svc:
        yield svc


def _add(db: Database, tag: str, n: int) -> None:
    with db.write() as s:
        s.execute(insert(rows), [{"tag": tag} for _ in range(n)])


def test_a_read_sees_a_committed_write_at_once_and_gives_its_connection_back(
    services: Services,
) -> None:
    """Each group-committed write is visible to the very next read; no connection is kept."""
    db, tag = services.db, uid()

    async def main() -> list[int]:
        seen = []
        try:
            for _ in range(5):
                await db.group.run(lambda s: s.execute(insert(rows).values(tag=tag)))
                seen.append(await db.reads.scalar(COUNT, {"tag": tag}))
                assert db.reads.in_use() == 0
            # many at once: each takes a connection for its statement only
            counts = await asyncio.gather(
                *(db.reads.scalar(COUNT, {"tag": tag}) for _ in range(40))
            )
            assert set(counts) == {5}
            assert db.reads.in_use() == 0
            with pytest.raises(DBAPIError):
                await db.reads.all(select(func.no_such_function()))
            assert db.reads.in_use() == 0
            return seen
        finally:
            await db.reads.dispose()

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]


def test_page_counts_every_row_of_the_query_in_the_same_snapshot(services: Services) -> None:
    """Rows and total agree, also for a page past the end and without a total."""
    db, tag = services.db, uid()
    _add(db, tag, 7)

    async def main() -> None:
        try:
            reads = db.reads
            first = await reads.page(BY_TAG, 3, 0, total=True, params={"tag": tag})
            last = await reads.page(BY_TAG, 3, 6, total=True, params={"tag": tag})
            past = await reads.page(BY_TAG, 3, 9, total=True, params={"tag": tag})
            bare = await reads.page(BY_TAG, 3, 3, total=False, params={"tag": tag})
            none = await reads.page(BY_TAG, 3, 0, total=True, params={"tag": uid()})
            ids = [r.id for r in await reads.all(BY_TAG, {"tag": tag})]
            got = [([r.id for r in p.rows], p.total) for p in (first, last, past, bare, none)]
            assert got == [(ids[:3], 7), (ids[6:], 7), ([], 7), (ids[3:6], None), ([], 0)]
        finally:
            await db.reads.dispose()

    asyncio.run(main())


def test_a_snapshot_does_not_see_a_write_committed_during_it(services: Services) -> None:
    """Statements inside snapshot() see one state; the next read sees the write."""
    db, tag = services.db, uid()
    _add(db, tag, 2)

    async def main() -> tuple[int, int, int]:
        try:
            async with db.reads.snapshot() as r:
                before = await r.scalar(COUNT, {"tag": tag})
                await asyncio.to_thread(_add, db, tag, 3)
                during = await r.scalar(COUNT, {"tag": tag})
            return before, during, await db.reads.scalar(COUNT, {"tag": tag})
        finally:
            await db.reads.dispose()

    assert asyncio.run(main()) == (2, 2, 5)


def test_sqlite_reads_use_the_same_pragmas_as_the_sync_engine(tmp_path: Path) -> None:
    """WAL, the busy timeout and foreign keys on the read path's own connections too."""
    reads = Reads(f"sqlite:///{tmp_path}/r.db")

    async def pragma(name: str) -> object:
        return (await reads.all(text(f"PRAGMA {name}")))[0][0]  # type: ignore[arg-type]

    try:
        assert asyncio.run(pragma("journal_mode")) == "wal"
        assert asyncio.run(pragma("busy_timeout")) == 60000
        assert asyncio.run(pragma("foreign_keys")) == 1
        assert asyncio.run(pragma("synchronous")) == 2  # FULL
    finally:
        reads.close()


@pytest.mark.skipif(
    backend() != "postgresql", reason="restarting a server only applies to PostgreSQL"
)
def test_reads_fail_cleanly_while_postgresql_is_down_and_recover_after(tmp_path: Path) -> None:
    """A read during an outage raises SQLAlchemy's error at once; after restart reads work."""
    with private_postgres() as cluster:
        reads = Reads(Database(cluster.url).url, pool_size=2)
        probe = select(func.count()).select_from(Table("pg_database", MetaData()))

        async def main() -> None:
            try:
                assert await reads.scalar(probe) >= 1
                cluster.stop("immediate")
                for _ in range(3):  # each pooled connection is found dead and replaced
                    with pytest.raises(DBAPIError):
                        await reads.scalar(probe)
                assert reads.in_use() == 0
                cluster.start()
                for _ in range(100):
                    try:
                        assert await reads.scalar(probe) >= 1
                        break
                    except DBAPIError:
                        await asyncio.sleep(0.1)
                else:
                    pytest.fail("reads did not recover after the restart")
                assert await reads.scalar(probe) >= 1
            finally:
                await reads.dispose()

        asyncio.run(main())


def test_reads_give_the_rows_and_values_core_execute_gives(services: Services) -> None:
    """Every column type read back as SQLAlchemy reads it, as `Row`s with the same keys."""
    db, key = services.db, uid("typed-")
    value = {
        "id": key,
        "ts": datetime(2031, 2, 3, 4, 5, 6, 7),
        "amount": Decimal("12.500"),
        "flag": True,
        "doc": {"k": ['a"b', None, 1.5], "naïve": "☃"},
        "note": "it's \\ a, {note}",
    }
    with db.write() as s:
        s.execute(insert(typed), [value])
    query = select(typed, typed.c.amount.label("_total")).where(typed.c.id == bindparam("id"))
    with db.read() as s:
        want = s.execute(query, {"id": key}).one()

    async def main() -> None:
        try:
            got = await db.reads.first(query, {"id": key})
            assert got is not None
            assert tuple(got) == tuple(want)
            assert got._fields == want._fields
            assert dict(got._mapping) == {**value, "_total": Decimal("12.500")}
            assert (got.ts, got.flag, got._total) == (value["ts"], True, Decimal("12.500"))
            # a text() statement: its columns named by the database
            named = await db.reads.all(text("SELECT 7 AS seven"))  # type: ignore[arg-type]
            assert (named[0].seven, named[0][0]) == (7, 7)
        finally:
            await db.reads.dispose()

    asyncio.run(main())


def test_an_in_list_is_refused_at_its_first_read_with_a_clear_error(services: Services) -> None:
    """A read is compiled once for the driver; an IN list would be expanded at each run."""
    query = select(rows.c.id).where(rows.c.tag.in_(["a", "b"]))

    async def main() -> None:
        try:
            with pytest.raises(ValueError, match="expanding IN"):
                await services.db.reads.all(query)
        finally:
            await services.db.reads.dispose()

    asyncio.run(main())


def test_a_value_the_database_refuses_is_sqlalchemys_data_error(services: Services) -> None:
    """PostgreSQL refuses a NUL character: SQLAlchemy's DataError (the app answers 400)."""
    if not services.db.is_postgres:
        pytest.skip("SQLite stores a NUL character")

    async def main() -> None:
        try:
            with pytest.raises(DataError):
                await services.db.reads.all(BY_TAG, {"tag": "a\x00b"})
            assert services.db.reads.in_use() == 0
            assert await services.db.reads.all(BY_TAG, {"tag": uid()}) == []
        finally:
            await services.db.reads.dispose()

    asyncio.run(main())


def test_an_idle_read_connection_the_server_closed_is_replaced_before_use(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a connection idle past the ping interval is pinged; a dead one is replaced."""
    if not services.db.is_postgres:
        pytest.skip("a server closing a connection is PostgreSQL's")
    reads = Reads(services.db.url, pool_size=1)
    backend_pid = select(func.pg_backend_pid())

    async def main() -> None:
        try:
            first = await reads.scalar(backend_pid)
            with services.db.read() as s:
                s.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
            monkeypatch.setattr(read_pool, "IDLE_PING_SECONDS", 0.0)
            second = await reads.scalar(backend_pid)  # no error: pinged, found dead, replaced
            assert second not in (None, first)
        finally:
            await reads.dispose()

    asyncio.run(main())


def test_a_read_waits_for_a_free_connection_and_gives_up_with_a_pool_timeout(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: past `pool_size` reads wait their turn; past the wait, SQLAlchemy's timeout."""
    if not services.db.is_postgres:
        pytest.skip("SQLite reads never wait for a connection")
    reads, tag = Reads(services.db.url, pool_size=2), uid()
    _add(services.db, tag, 1)
    monkeypatch.setattr(read_pool, "WAIT_SECONDS", 0.3)

    async def main() -> None:
        try:
            counts = await asyncio.gather(*(reads.scalar(COUNT, {"tag": tag}) for _ in range(20)))
            assert counts == [1] * 20
            async with reads.snapshot(), reads.snapshot():
                assert reads.in_use() == 2
                with pytest.raises(PoolTimeout):
                    await reads.scalar(COUNT, {"tag": tag})
            assert await reads.scalar(COUNT, {"tag": tag}) == 1
        finally:
            await reads.dispose()

    asyncio.run(main())


#: what a read's statement ran as: its backend and its statement's start (one per statement)
WHO = (
    select(rows.c.id, func.pg_backend_pid().label("pid"), func.statement_timestamp().label("at"))
    .where(rows.c.tag == bindparam("tag"))
    .order_by(rows.c.id.desc())
)


def _postgres_only(services: Services) -> None:
    if not services.db.is_postgres:
        pytest.skip("SQLite reads run on the loop, one at a time: nothing to gather")


def test_reads_started_in_one_turn_of_the_loop_run_as_one_statement_each_with_its_rows(
    services: Services,
) -> None:
    """PostgreSQL: 20 reads at once are one statement on one connection; each its own rows."""
    _postgres_only(services)
    tags = [uid() for _ in range(20)]
    for i, tag in enumerate(tags):
        if i % 4:  # 0 to 3 rows each: a read may find nothing
            _add(services.db, tag, i % 4)
    with services.db.read() as s:
        want = [[r.id for r in s.execute(WHO, {"tag": t})] for t in tags]
    reads = services.db.reads

    async def main() -> None:
        try:
            got = await asyncio.gather(*(reads.all(WHO, {"tag": t}) for t in tags))
            assert [[r.id for r in rs] for rs in got] == want  # in the statement's order
            assert len({(r.pid, r.at) for rs in got for r in rs}) == 1  # one statement
            firsts = await asyncio.gather(*(reads.first(WHO, {"tag": t}) for t in tags))
            assert [r.id if r else None for r in firsts] == [w[0] if w else None for w in want]
            assert got[3][0]._fields == ("id", "pid", "at")
            # one read alone is the statement itself, and a later turn's reads another one
            alone = await reads.all(WHO, {"tag": tags[3]})
            assert [r.id for r in alone] == want[3]
            assert alone[0].at != got[3][0].at
            assert reads.in_use() == 0
        finally:
            await reads.dispose()

    asyncio.run(main())


def test_a_refused_value_fails_only_its_own_callers_read_among_gathered_reads(
    services: Services,
) -> None:
    """PostgreSQL: a value the server refuses fails only its own caller's read."""
    _postgres_only(services)
    tag = uid()
    _add(services.db, tag, 2)
    reads = services.db.reads

    async def main() -> None:
        try:
            got = await asyncio.gather(
                reads.all(BY_TAG, {"tag": tag}),
                reads.all(BY_TAG, {"tag": "a\x00b"}),  # PostgreSQL refuses a NUL character
                reads.scalar(COUNT, {"tag": tag}),
                reads.all(BY_TAG, {"tag": tag}),
                return_exceptions=True,
            )
            assert isinstance(got[1], DataError)
            assert [len(got[0]), got[2], len(got[3])] == [2, 2, 2]  # type: ignore[arg-type]
            assert reads.in_use() == 0
        finally:
            await reads.dispose()

    asyncio.run(main())


def test_a_cancelled_reader_leaves_the_reads_gathered_with_it_answered(
    services: Services,
) -> None:
    """PostgreSQL: cancelling the first caller or another one cancels only that read."""
    _postgres_only(services)
    tags = [uid() for _ in range(5)]
    for tag in tags:
        _add(services.db, tag, 1)
    reads = services.db.reads

    async def main() -> None:
        try:
            for victim in (0, 2):  # the first caller (it gathers the others), then another
                tasks = [asyncio.create_task(reads.all(BY_TAG, {"tag": t})) for t in tags]
                await asyncio.sleep(0)  # each task has started its read
                tasks[victim].cancel()
                done = await asyncio.gather(*tasks, return_exceptions=True)
                assert isinstance(done[victim], asyncio.CancelledError)
                assert [len(d) for i, d in enumerate(done) if i != victim] == [1] * 4  # type: ignore[arg-type]
            await asyncio.sleep(0.05)
            assert reads.in_use() == 0
        finally:
            await reads.dispose()

    asyncio.run(main())


def test_gathered_reads_bind_each_parameter_as_its_column_type(services: Services) -> None:
    """PostgreSQL: timestamps, decimals and booleans travel in the batch as they bind alone."""
    _postgres_only(services)
    keys = [uid("typed-") for _ in range(3)]
    values = [
        {
            "id": k,
            "ts": datetime(2031, 2, 3, 4, 5, 6, i),
            "amount": Decimal(f"{i}.125"),
            "flag": i % 2 == 0,
        }
        for i, k in enumerate(keys)
    ]
    with services.db.write() as s:
        s.execute(insert(typed), values)
    query = select(typed.c.id).where(
        typed.c.ts == bindparam("ts"),
        typed.c.amount == bindparam("amount"),
        typed.c.flag == bindparam("flag"),
    )
    asked = [{"ts": v["ts"], "amount": v["amount"], "flag": v["flag"]} for v in values]
    asked.append({**asked[0], "flag": not asked[0]["flag"]})  # no such row
    reads = services.db.reads

    async def main() -> None:
        try:
            got = await asyncio.gather(*(reads.scalar(query, a) for a in asked))
            assert got == [*keys, None]
        finally:
            await reads.dispose()

    asyncio.run(main())


def test_gathered_reads_that_find_no_connection_all_fail_after_one_wait(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the pool's timeout is every gathered caller's, after one wait, not one each."""
    _postgres_only(services)
    reads, tag = Reads(services.db.url, pool_size=1), uid()
    monkeypatch.setattr(read_pool, "WAIT_SECONDS", 0.3)

    async def main() -> None:
        try:
            async with reads.snapshot():  # the one connection is taken
                started = asyncio.get_running_loop().time()
                got = await asyncio.gather(
                    *(reads.scalar(COUNT, {"tag": tag}) for _ in range(5)), return_exceptions=True
                )
                waited = asyncio.get_running_loop().time() - started
            assert all(isinstance(g, PoolTimeout) for g in got), got
            assert waited < 1.2  # one wait of 0.3 s; again alone, one by one, 1.8 s
            assert await reads.scalar(COUNT, {"tag": tag}) == 0
        finally:
            await reads.dispose()

    asyncio.run(main())
