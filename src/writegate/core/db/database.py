"""The database facade: read and write transactions, one-statement writes, the group commit."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from writegate.core.db import commit_actions
from writegate.core.db.engine import (
    build_engine,
    build_loop_engine,
    build_sqlite_loop_engine,
    build_unflushed_engine,
    normalize_url,
    track_backends,
)
from writegate.core.db.group_commit import GroupCommit, WriterBusy
from writegate.core.db.reads import Reads

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


@contextlib.contextmanager
def _transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction of a new session: committed on success, rolled back on error."""
    with sessions() as session, session.begin():
        yield session


@contextlib.contextmanager
def _transaction_now(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """`_transaction` begun at once; WriterBusy if SQLite's writer lock is taken."""
    with _transaction(sessions) as session:
        try:
            session.connection()
        except OperationalError as exc:
            if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise WriterBusy from exc
            raise
        yield session


def _write_sessions(engine: Engine) -> sessionmaker[Session]:
    """Write sessions on engine: their commits run what was queued with `after_commit`."""
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    commit_actions.track(sessions)
    return sessions


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class Database:
    """Engine, read and write sessions, `group`: the shared durable write path, and `reads`."""

    def __init__(
        self, url: str, pool_size: int = 10, group_max_batch: int = 256, read_pool_size: int = 5
    ) -> None:
        self.url = normalize_url(url)
        self.engine = build_engine(self.url, pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgres = self.engine.dialect.name == "postgresql"
        #: PostgreSQL: the server process ids of this engine's connections, which tell a
        #: NOTIFY this process sent itself (see `Worker._idle`)
        self.backends: set[int] = set()
        if self.is_postgres:
            track_backends(self.engine, self.backends)
        #: the engine for writes outside a session (DDL): on SQLite it begins IMMEDIATE, so a
        #: read-then-write never fails on a snapshot another writer moved past
        self.write_engine = self.engine.execution_options(writegate_write=True)
        self._write = _write_sessions(self.write_engine)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        #: PostgreSQL: `statement(flush=False)`'s connections, opened on first use
        self._unflushed: Engine | None = None
        #: the attached event loop's engine of writes (see `attach_loop`)
        self._loop_engine: Engine | None = None
        #: PostgreSQL: that engine's async form, which owns its connections
        self._loop_async: AsyncEngine | None = None
        #: engine events listened for through `listen`, on every engine, present and future
        self._listeners: list[tuple[str, Callable[..., Any]]] = []
        self._lock = threading.Lock()
        #: every client-facing write: `await db.group.run(fn)` (see GroupCommit)
        self.group = GroupCommit(self.write, one_writer=self.is_sqlite, max_batch=group_max_batch)
        #: every read an endpoint answers: `await db.reads.all(select(...))` (see Reads)
        self.reads = Reads(self.url, read_pool_size)

    def engines(self) -> list[Engine]:
        """The engines of this database's sessions: `engine`, and the attached loop's."""
        loop_engine = self._loop_engine
        return [self.engine] if loop_engine is None else [self.engine, loop_engine]

    def listen(self, identifier: str, fn: Callable[..., Any]) -> None:
        """Listen for an engine event (statements, pool checkouts) on every engine of
        `engines()`, the attached loop's too, even if it is attached later."""
        with self._lock:
            self._listeners.append((identifier, fn))
            engines = self.engines()
        for engine in engines:
            event.listen(engine, identifier, fn)

    def unlisten(self, identifier: str, fn: Callable[..., Any]) -> None:
        """Stop what `listen` started."""
        with self._lock:
            self._listeners.remove((identifier, fn))
            engines = self.engines()
        for engine in engines:
            event.remove(engine, identifier, fn)

    def connections_in_use(self) -> int:
        """Connections of `engines()` checked out of their pools right now."""
        return sum(getattr(e.pool, "checkedout", lambda: 0)() for e in self.engines())

    def write(self) -> contextlib.AbstractContextManager[Session]:
        """A write transaction of its own: committed on success, rolled back on error."""
        return _transaction(self._write)

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the group writes of `loop`'s async callers on it (see `GroupCommit.attach`):
        on PostgreSQL through psycopg's async driver, on SQLite on a connection of its own
        that never waits for the writer lock."""
        if self._loop_engine is not None:
            return
        if self.is_postgres:
            self._loop_async = build_loop_engine(self.url, self.group.max_in_flight)
            engine = self._loop_async.sync_engine
            track_backends(engine, self.backends)
            transaction = _transaction
        else:
            engine = build_sqlite_loop_engine(self.url)
            transaction = _transaction_now
        with self._lock:
            self._loop_engine = engine
            listeners = list(self._listeners)
        for identifier, fn in listeners:
            event.listen(engine, identifier, fn)
        self.group.attach(loop, functools.partial(transaction, _write_sessions(engine)))

    async def detach_loop(self) -> None:
        """Undo `attach_loop` and close its connections (on the attached loop)."""
        await self.group.detach()
        engine, self._loop_engine = self._loop_engine, None
        async_engine, self._loop_async = self._loop_async, None
        if async_engine is not None:
            await async_engine.dispose()
        elif engine is not None:
            engine.dispose()

    def read(self) -> contextlib.AbstractContextManager[Session]:
        """A read-only transaction."""
        return _transaction(self._read)

    @contextlib.contextmanager
    def statement(self, *, flush: bool = True) -> Iterator[Connection]:
        """A connection for ONE write statement, which commits by itself when it succeeds.

        On PostgreSQL the statement runs in autocommit: no BEGIN and COMMIT round trips of
        their own (one statement is atomic anyway). On SQLite it runs in a write transaction,
        whose BEGIN IMMEDIATE waits for the single writer lock. Commit hooks do not run.

        `flush=False` (PostgreSQL): the commit does not wait for its WAL flush, only for a
        write whose loss in a server crash is harmless (a job's claim). A later commit that
        waits for its flush flushes this one first. These connections plan a statement once
        (`engine.CLAIM_PLAN`): only for one whose plan is an index's whatever the table holds.
        """
        if not self.is_postgres:
            with self.write_engine.begin() as conn:
                yield conn
            return
        engine = self._autocommit if flush else self._unflushed_engine()
        with engine.connect() as conn:
            yield conn

    def _unflushed_engine(self) -> Engine:
        with self._lock:
            if self._unflushed is None:
                self._unflushed = build_unflushed_engine(self.url)
            return self._unflushed

    def lock(self, session: Session, key: str) -> None:
        """Serialize transactions on `key` until the caller's transaction ends.

        PostgreSQL takes a transaction-scoped advisory lock; SQLite write transactions are
        already serialized by BEGIN IMMEDIATE, so nothing more is needed there.
        """
        if self.is_postgres:
            session.connection().execute(_LOCK, {"k": _lock_id(key)})

    def dispose(self) -> None:
        """Finish the queued group writes and close every pooled connection.

        The async reads' connections are closed by `await reads.dispose()` on their loop.
        """
        self.group.close()
        self.reads.close()
        self.engine.dispose()
        if self._unflushed is not None:
            self._unflushed.dispose()
