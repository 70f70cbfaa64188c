"""PostgreSQL's read connections: psycopg's async connections of one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from psycopg import AsyncConnection, IsolationLevel
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout

from writegate.core.db.engine import IDLE_PING_SECONDS, PLAN_EACH_RUN

#: seconds a read waits for one of the pool's connections, as the engines' `pool_timeout`
WAIT_SECONDS = 30.0


class ReadPool:
    """At most `size` connections, each opened when a read needs it and none is idle.

    Not psycopg_pool: it opens connections in the background and a read waits for them, so
    while the server is down every read would hang for the pool's timeout. Here a read that
    finds no connection opens one and fails at once if it cannot, as the engines' pools do;
    an idle connection is pinged before use only after `IDLE_PING_SECONDS`, as theirs are.
    Connections are in autocommit (no BEGIN and ROLLBACK round trips), plan each run, and
    their transactions (`Reads.snapshot`) are REPEATABLE READ.
    """

    def __init__(self, url: str, size: int) -> None:
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._slots = asyncio.Semaphore(size)
        #: idle connections, each with the time it was given back
        self._idle: list[tuple[AsyncConnection[tuple[object, ...]], float]] = []
        #: connections checked out now
        self.in_use = 0
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[tuple[object, ...]]]:
        """A connection for the block's statements; psycopg's errors are raised as they are."""
        if self._slots.locked():  # wait_for wraps the wait in a task: only when there is one
            try:
                await asyncio.wait_for(self._slots.acquire(), WAIT_SECONDS)
            except TimeoutError:
                raise PoolTimeout(f"no read connection free within {WAIT_SECONDS:.0f}s") from None
        else:
            await self._slots.acquire()
        try:
            conn = await self._take()
            self.in_use += 1
            try:
                yield conn
            finally:
                self.in_use -= 1
                await self._give_back(conn)
        finally:
            self._slots.release()

    async def _take(self) -> AsyncConnection[tuple[object, ...]]:
        while self._idle:
            conn, since = self._idle.pop()
            if time.monotonic() - since < IDLE_PING_SECONDS:
                return conn
            try:
                await conn.execute("")  # a ping: the server may have gone while it was idle
                return conn
            except Exception:
                await conn.close()
        conn = await AsyncConnection.connect(self._conninfo, autocommit=True)
        try:
            await conn.execute(f"SET {PLAN_EACH_RUN}")
            await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _give_back(self, conn: AsyncConnection[tuple[object, ...]]) -> None:
        if self._closed or conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            await conn.close()  # broken, or left inside a transaction: never reused
        else:
            self._idle.append((conn, time.monotonic()))

    async def close(self) -> None:
        """Close the idle connections (those in use are closed when given back)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            await conn.close()
