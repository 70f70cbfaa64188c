"""Reads on the event loop: Core statements, no thread-pool hop and no ORM unit of work."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.pool import QueuePool

from writegate.core.db.batched import BatchedSelect
from writegate.core.db.engine import build_read_engine, dialect_of
from writegate.core.db.fastsql import DriverStatement

if TYPE_CHECKING:  # psycopg is imported on PostgreSQL only (it costs ~20 MB of memory)
    from psycopg import AsyncConnection

    from writegate.core.db.read_pool import ReadPool

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


class _Select:
    """A statement compiled once for the driver, and the `Row`s of what it returns."""

    def __init__(self, dialect: Dialect, statement: Query) -> None:
        self.driver = DriverStatement(dialect, statement)
        #: the statement for several callers' parameters at once, where it can be built
        self.batched = BatchedSelect.of(dialect, statement)

    def rows(self, values: list[tuple[Any, ...]]) -> list[AnyRow]:
        """The driver's rows as SQLAlchemy `Row`s (attributes, `_mapping`, `_fields`)."""
        return self.driver.as_rows(values)


#: a gathered read: its parameters, and the future its caller awaits (None while it gathers)
_Waiting: TypeAlias = tuple[Mapping[str, Any], "asyncio.Future[list[AnyRow]] | None"]


def _settle(future: asyncio.Future[list[AnyRow]] | None, outcome: Any) -> None:
    """Answer one gathered caller with its rows or its exception, unless it went away."""
    if future is None or future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Reader(_Rows):
    """Statements on one connection (one snapshot inside `Reads.snapshot()`)."""

    def __init__(self, reads: Reads, conn: Connection | AsyncConnection[Any]) -> None:
        self._reads = reads
        self._conn = conn

    async def all(self, statement: Query, params: Params = None) -> list[AnyRow]:
        """Every row of a SELECT."""
        select_ = self._reads.compiled(statement)
        if isinstance(self._conn, Connection):
            return select_.rows(select_.driver.fetch(self._conn, params or {}))
        return select_.rows(await select_.driver.fetch_async(self._conn, params or {}))


class Reads(_Rows):
    """The one read path every module uses: `await db.reads.all(select(...))`.

    Each statement is compiled once, the first time it is read (pass statements built once,
    with `bindparam`s for the values, not built anew per call), and run on the driver's own
    cursor: SQLAlchemy's per-execution bookkeeping would cost as much as the query. On
    PostgreSQL, psycopg's async connections on the running event loop, in autocommit: one
    round trip a statement, and a read never waits for a thread. On SQLite a statement runs
    on the event loop itself, on a connection of its own pool: a read in WAL mode never waits
    for a writer, and a query of a local file costs less than the hop to a thread and back.
    A statement is its own snapshot; `snapshot()` gives several statements one.

    On PostgreSQL the reads of one statement that requests start in the same turn of the
    event loop are gathered and run as one statement (`BatchedSelect`): one round trip, one
    plan and one pooled connection for all of them, each caller answered with its own rows.
    If the gathered statement fails on a value (`DataError`, or a value that cannot be
    bound), each caller's read runs again alone, so one caller's bad value fails only its
    own read; any other error (the server, the pool) is every caller's.
    """

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.pool_size = pool_size
        self.is_sqlite = url.startswith("sqlite")
        self._dialect = dialect_of(url)
        self._sync: Engine | None = None
        #: PostgreSQL: one pool per event loop (an asyncio connection belongs to its loop)
        self._pools: dict[asyncio.AbstractEventLoop, ReadPool] = {}
        self._compiled: weakref.WeakKeyDictionary[Query, _Select] = weakref.WeakKeyDictionary()
        #: the statements `page` derives from a query, for as long as the query lives
        self._pages: weakref.WeakKeyDictionary[Query, tuple[Query, Query, Query]] = (
            weakref.WeakKeyDictionary()
        )
        #: (loop, statement) -> the reads gathered for its next run, the first caller's first
        self._gathering: dict[tuple[asyncio.AbstractEventLoop, _Select], list[_Waiting]] = {}
        #: the gathered runs in flight (the loop keeps only weak references to tasks)
        self._runs: set[asyncio.Task[None]] = set()

    def compiled(self, statement: Query) -> _Select:
        """statement compiled for the driver, once for as long as the statement lives."""
        select_ = self._compiled.get(statement)
        if select_ is None:
            select_ = self._compiled[statement] = _Select(self._dialect, statement)
        return select_

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
                    yield Reader(self, conn)
                finally:
                    driver.execute("ROLLBACK")
            return
        async with self._connection() as aconn, aconn.transaction(force_rollback=True):
            yield Reader(self, aconn)

    async def all(self, statement: Query, params: Params = None) -> list[AnyRow]:
        """Every row of one SELECT."""
        if self.is_sqlite:
            await _let_others_run()
            with self._sqlite().connect() as conn:
                return await Reader(self, conn).all(statement, params)
        select_ = self.compiled(statement)
        if select_.batched is None:
            return await self._alone(select_, params or {})
        return await self._gathered(select_, params or {})

    async def _alone(self, select_: _Select, params: Mapping[str, Any]) -> list[AnyRow]:
        async with self._connection() as aconn:
            return select_.rows(await select_.driver.fetch_async(aconn, params))

    async def _gathered(self, select_: _Select, params: Mapping[str, Any]) -> list[AnyRow]:
        """The first caller waits one turn of the loop for the others, then runs them all."""
        loop = asyncio.get_running_loop()
        key = (loop, select_)
        waiting = self._gathering.get(key)
        mine: asyncio.Future[list[AnyRow]]
        if waiting is not None:
            mine = loop.create_future()
            waiting.append((params, mine))
            return await mine
        waiting = self._gathering[key] = [(params, None)]
        try:
            await asyncio.sleep(0)
        except BaseException:  # cancelled: the others' reads still run, without this one's
            del self._gathering[key]
            if len(waiting) > 1:
                self._start(select_, waiting)
            raise
        del self._gathering[key]
        if len(waiting) == 1:
            return await self._alone(select_, params)
        mine = loop.create_future()
        waiting[0] = (params, mine)
        self._start(select_, waiting)
        return await mine

    def _start(self, select_: _Select, waiting: list[_Waiting]) -> None:
        """Run gathered reads in a task of their own: no caller's cancellation stops them."""
        run = asyncio.get_running_loop().create_task(self._run_gathered(select_, waiting))
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)

    async def _run_gathered(self, select_: _Select, waiting: list[_Waiting]) -> None:
        batched = select_.batched
        assert batched is not None
        try:
            try:
                async with self._connection() as aconn:
                    rows = await batched.driver.fetch_async(
                        aconn, batched.params([p for p, _ in waiting])
                    )
            except (DataError, TypeError, ValueError):
                # A value one caller gave (one its column's type refuses) fails the whole
                # statement: each read alone, so only that caller's read fails.
                alone = await asyncio.gather(
                    *(self._alone(select_, p) for p, _ in waiting), return_exceptions=True
                )
                for (_, future), outcome in zip(waiting, alone, strict=True):
                    _settle(future, outcome)
                return
            except Exception as exc:  # the server or the pool: the same for every caller
                for _, future in waiting:
                    _settle(future, exc)
                return
            for (_, future), own in zip(waiting, batched.split(rows, len(waiting)), strict=True):
                _settle(future, select_.rows(own))
        finally:  # cancelled with the loop: the callers still waiting are cancelled too
            for _, future in waiting:
                if future is not None and not future.done():
                    future.cancel()

    async def page(
        self, query: Query, limit: int, offset: int, *, total: bool, params: Params = None
    ) -> Page:
        """A page of an ordered query and, if asked, the count of all its rows: one snapshot.

        The count rides in the page's own statement; only a page past the end needs a
        second statement (in one snapshot with the first). A query kept and reused (bound
        values in `params`) is paged without building or compiling a statement.
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
            self._sync = build_read_engine(self.url, self.pool_size)
        return self._sync

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection of the running loop's pool; a driver error raised as SQLAlchemy's."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            from writegate.core.db.read_pool import ReadPool

            pool = self._pools[loop] = ReadPool(self.url, self.pool_size)
        error = self._dialect.loaded_dbapi.Error
        try:
            async with pool.connection() as conn:
                yield conn
        except error as exc:  # connecting, a snapshot's BEGIN (a statement's run maps its own)
            raise DBAPIError.instance(None, None, exc, error, dialect=self._dialect) from exc

    def in_use(self) -> int:
        """Connections of the read path checked out right now (every loop's)."""
        used = sum(pool.in_use for pool in self._pools.values())
        if self._sync is not None and isinstance(self._sync.pool, QueuePool):
            used += self._sync.pool.checkedout()
        return used

    async def dispose(self) -> None:
        """Close the running loop's connections (call it before the loop ends)."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    def close(self) -> None:
        """Close the SQLite connections, and forget pools whose loops have ended."""
        if self._sync is not None:
            self._sync.dispose()
        for loop in [loop for loop in self._pools if loop.is_closed()]:
            del self._pools[loop]
