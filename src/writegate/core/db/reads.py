"""Reads on the event loop: Core statements, no thread-pool hop and no ORM unit of work."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool

from writegate.core.db.engine import build_read_engine

Params = Mapping[str, Any] | None
#: a SELECT of any columns, and a row of one
Query: TypeAlias = Select[*tuple[Any, ...]]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


@dataclass(frozen=True)
class Page:
    """One page of a query's rows, and how many rows the whole query has."""

    rows: list[AnyRow]
    #: rows of the whole query; None when it was not asked for
    total: int | None


#: statement -> the same with LIMIT 1, for as long as the statement lives (a statement kept
#: and reused is then limited, and its cache key computed, only once)
_FIRSTS: weakref.WeakKeyDictionary[Query, Query] = weakref.WeakKeyDictionary()


def _first(statement: Query) -> Query:
    limited = _FIRSTS.get(statement)
    if limited is None:
        limited = _FIRSTS[statement] = statement.limit(1)
    return limited


async def _let_others_run() -> None:
    # A read on SQLite never waits, so a request would run from its first byte to its
    # answer in one step of the loop. Measured (bench, getChanges of 100 packages, 32
    # connections): without this one yield p99 was 1.4-2.9 s against 0.3-0.5 s with it,
    # and throughput 20-40 % lower.
    await asyncio.sleep(0)


class _Rows:
    """`first` and `scalar`, on top of a subclass's `all`."""

    async def all(self, statement: Query, params: Params = None) -> list[AnyRow]:
        """Every row of a SELECT."""
        raise NotImplementedError

    async def first(self, statement: Query, params: Params = None) -> AnyRow | None:
        """The first row of a SELECT, or None."""
        rows = await self.all(_first(statement), params)
        return rows[0] if rows else None

    async def scalar(self, statement: Query, params: Params = None) -> Any:
        """The first column of the first row, or None."""
        row = await self.first(statement, params)
        return None if row is None else row[0]


class Reader(_Rows):
    """Statements on one connection (one snapshot inside `Reads.snapshot()`)."""

    def __init__(self, conn: Connection | AsyncConnection) -> None:
        self._conn = conn

    async def all(self, statement: Query, params: Params = None) -> list[AnyRow]:
        """Every row of a SELECT."""
        if isinstance(self._conn, AsyncConnection):
            result = await self._conn.execute(statement, params)
        else:
            result = self._conn.execute(statement, params)
        return list(result.all())


class Reads(_Rows):
    """The one read path every module uses: `await db.reads.all(select(...))`.

    On PostgreSQL, psycopg's async driver on the running event loop, in autocommit: one
    round trip a statement, and a read never waits for a thread. On SQLite a statement runs
    on the event loop itself, on a connection of its own pool: a read in WAL mode never waits
    for a writer, and a query of a local file costs less than the hop to a thread and back.
    A statement is its own snapshot; `snapshot()` gives several statements one.
    """

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.pool_size = pool_size
        self.is_sqlite = url.startswith("sqlite")
        self._sync: Engine | None = None
        #: PostgreSQL: one engine per event loop (an asyncio connection belongs to its loop)
        self._async: dict[asyncio.AbstractEventLoop, AsyncEngine] = {}
        #: the statements `page` derives from a query, for as long as the query lives
        self._pages: weakref.WeakKeyDictionary[Query, tuple[Query, Query, Query]] = (
            weakref.WeakKeyDictionary()
        )

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Reader]:
        """A read transaction: every statement in it sees the same committed state.

        Await nothing but its statements inside: on SQLite the block holds a connection
        while other requests run.
        """
        if self.is_sqlite:
            await _let_others_run()
            with self._sqlite().connect() as conn:
                driver = conn.connection.driver_connection
                assert driver is not None
                driver.execute("BEGIN")
                try:
                    yield Reader(conn)
                finally:
                    driver.execute("ROLLBACK")
            return
        async with self._engine().connect() as aconn:
            await aconn.execution_options(isolation_level="REPEATABLE READ")
            async with aconn.begin():
                yield Reader(aconn)

    async def all(self, statement: Query, params: Params = None) -> list[AnyRow]:
        """Every row of one SELECT."""
        if self.is_sqlite:
            await _let_others_run()
            with self._sqlite().connect() as conn:
                return await Reader(conn).all(statement, params)
        async with self._engine().connect() as aconn:
            return await Reader(aconn).all(statement, params)

    async def page(
        self, query: Query, limit: int, offset: int, *, total: bool, params: Params = None
    ) -> Page:
        """A page of an ordered query and, if asked, the count of all its rows: one snapshot.

        The count rides in the page's own statement; only a page past the end needs a
        second statement (in one snapshot with the first). A query kept and reused (bound
        values in `params`) is paged without building a statement.
        """
        values = {**(params or {}), "_limit": limit, "_offset": offset}
        page, counted, with_total = self._paged(query)
        if not total:
            return Page(await self.all(page, values), None)
        rows = await self.all(with_total, values)
        if rows:
            return Page(rows, int(rows[0]._total))
        if offset == 0:
            return Page([], 0)
        async with self.snapshot() as r:
            return Page(await r.all(page, values), await r.scalar(counted, values))

    def _paged(self, query: Query) -> tuple[Query, Query, Query]:
        """(query's page with `_limit`/`_offset` parameters, the count of query's rows, the
        page with that count as a last column `_total`), built once per query: a statement
        built anew is keyed for SQLAlchemy's compiled cache on every call."""
        paged = self._pages.get(query)
        if paged is None:
            page = query.limit(bindparam("_limit")).offset(bindparam("_offset"))
            counted = select(func.count()).select_from(query.order_by(None).subquery())
            with_total = page.add_columns(counted.scalar_subquery().label("_total"))
            paged = self._pages[query] = (page, counted, with_total)
        return paged

    def _sqlite(self) -> Engine:
        if self._sync is None:
            engine = build_read_engine(self.url, self.pool_size)
            assert isinstance(engine, Engine)
            self._sync = engine
        return self._sync

    def _engine(self) -> AsyncEngine:
        loop = asyncio.get_running_loop()
        engine = self._async.get(loop)
        if engine is None:
            built = build_read_engine(self.url, self.pool_size)
            assert isinstance(built, AsyncEngine)
            engine = self._async[loop] = built
        return engine

    def in_use(self) -> int:
        """Connections of the read path checked out right now (every loop's)."""
        pools = [e.sync_engine.pool for e in self._async.values()]
        if self._sync is not None:
            pools.append(self._sync.pool)
        return sum(p.checkedout() for p in pools if isinstance(p, QueuePool))

    async def dispose(self) -> None:
        """Close the running loop's connections (call it before the loop ends)."""
        engine = self._async.pop(asyncio.get_running_loop(), None)
        if engine is not None:
            await engine.dispose()

    def close(self) -> None:
        """Close the SQLite connections, and forget engines whose loops have ended."""
        if self._sync is not None:
            self._sync.dispose()
        for loop, engine in list(self._async.items()):
            if loop.is_closed():
                engine.sync_engine.dispose(close=False)
                del self._async[loop]
