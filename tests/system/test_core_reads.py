"""core.db.reads: the async read path, on the session database and on a private cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from tests.harness import backend, uid
from tests.system.conftest import core_services
from tests.system.faults import private_postgres
from writegate.core.db import Database, Reads
from writegate.core.services import Services

scratch = MetaData()
rows = Table(
    "core_test_reads",
    scratch,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tag", String(64), index=True),
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
