"""Engine, sessions and metadata for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger("writegate.db")

T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by the core and every module."""

    metadata = MetaData(naming_convention=NAMING)


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to emit.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_on_begin(conn: Any) -> None:
    # Writers take the lock up front: a deferred read->write upgrade can fail with SQLITE_BUSY.
    write = conn.get_execution_options().get("writegate_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def build_engine(url: str, pool_size: int = 10) -> Engine:
    """Create an engine tuned for writegate's durability rules."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=pool_size,
            max_overflow=pool_size * 4,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_timeout=30,
    )


class _GroupCommit:
    """One writer thread that runs queued write functions in shared transactions.

    Whatever callers queue while a commit is in flight is run in the next transaction, each
    function inside its own savepoint, and every caller is answered only after that one
    COMMIT (one fsync on SQLite) has succeeded.
    """

    def __init__(self, db: Database, max_batch: int) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Callable[[Session], Any], Future[Any]] | None]
        self._queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[Session], T]) -> Future[T]:
        """Queue fn; the future resolves once its transaction has committed."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("group_write() cannot be called from inside a group write")
        future: Future[T] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="writegate-group-commit", daemon=True
                )
                self._thread.start()
            self._queue.put((fn, future))
        return future

    def stop(self) -> None:
        """Finish what is queued, then end the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(None)
        thread.join(30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[Callable[[Session], Any], Future[Any]]]) -> None:
        live = [(fn, fut) for fn, fut in batch if fut.set_running_or_notify_cancel()]
        if not live:
            return
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self.db.write() as session:
                if len(live) == 1:
                    fn, fut = live[0]
                    outcomes.append((fut, fn(session), None))
                else:
                    for fn, fut in live:
                        # A failing caller rolls back to its own savepoint, not the batch.
                        try:
                            with session.begin_nested():
                                result = fn(session)
                        except Exception as exc:
                            outcomes.append((fut, None, exc))
                        else:
                            outcomes.append((fut, result, None))
        except BaseException as exc:
            # Nothing committed: every caller still waiting gets the error.
            for _fn, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for fut, result, error in outcomes:
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)


class Database:
    """Engine plus read and write session factories."""

    def __init__(self, url: str, pool_size: int = 10, group_max_batch: int = 256) -> None:
        self.url = normalize_url(url)
        self.engine = build_engine(self.url, pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgres = self.engine.dialect.name == "postgresql"
        write_bind = self.engine.execution_options(writegate_write=True)
        self._write = sessionmaker(bind=write_bind, expire_on_commit=False)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._after_commit: list[Callable[[Session], None]] = []
        self._before_commit: list[Callable[[Session], None]] = []
        self._lock = threading.Lock()
        event.listen(self._write, "after_commit", self._run_after_commit)
        event.listen(self._write, "before_commit", self._run_before_commit)
        self._group = _GroupCommit(self, group_max_batch)

    def on_commit(self, callback: Callable[[Session], None]) -> None:
        """Call callback after every committed write session."""
        with self._lock:
            self._after_commit.append(callback)

    def before_commit(self, callback: Callable[[Session], None]) -> None:
        """Call callback before every write session commit or savepoint release."""
        with self._lock:
            self._before_commit.append(callback)

    def _run_before_commit(self, session: Session) -> None:
        for cb in list(self._before_commit):
            cb(session)

    def _run_after_commit(self, session: Session) -> None:
        for cb in list(self._after_commit):
            cb(session)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with self._write() as session, session.begin():
            yield session

    def group_write(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in a write transaction shared with concurrent callers (group commit).

        Returns fn's result (or raises its exception) only after the shared transaction has
        committed; a caller whose fn raises is rolled back to its own savepoint and does not
        affect the others. fn must be short and only touch the database through `session`;
        do not call this while holding another write transaction in the same thread.
        """
        return self._group.submit(fn).result()

    async def group_write_async(self, fn: Callable[[Session], T]) -> T:
        """`group_write` for async code: awaits the shared commit without blocking the loop."""
        return await asyncio.wrap_future(self._group.submit(fn))

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction."""
        with self._read() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Stop the group-commit writer and close every pooled connection."""
        self._group.stop()
        self.engine.dispose()
