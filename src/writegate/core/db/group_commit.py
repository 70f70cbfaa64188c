"""Group commit: concurrent writers share one durable COMMIT, each isolated from the others."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from writegate.core.db.database import Database

T = TypeVar("T")

#: PostgreSQL's SQLSTATEs for a transaction that lost a race to another one and may simply run
#: again: deadlock_detected, serialization_failure
_LOST_RACE = frozenset({"40P01", "40001"})


class BatchWrite(Protocol):
    """A write that takes every queued caller's item at once: one outcome per item, in order.

    An outcome is the caller's result, or an exception raised to that caller alone (its work
    is then rolled back: the batch is replayed with each item in a savepoint of its own).
    """

    def __call__(self, session: Session, items: list[Any], /) -> list[Any]: ...


class _Single:
    """A one-caller write: fn(session), as a BatchWrite of one item."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Session], Any]) -> None:
        self.fn = fn

    def __call__(self, session: Session, items: list[Any]) -> list[Any]:
        try:
            return [self.fn(session)]
        except Exception as exc:
            return [exc]


class _Call:
    """One caller's write: what to run, its outcome and how to answer."""

    __slots__ = ("future", "item", "loop", "outcome", "write")

    def __init__(
        self, write: BatchWrite, item: Any, loop: asyncio.AbstractEventLoop | None
    ) -> None:
        self.write = write
        self.item = item
        self.loop = loop
        self.outcome: Any = None
        #: async callers get an asyncio future settled on their loop; the others this one
        self.future: asyncio.Future[Any] | concurrent.futures.Future[Any] = (
            loop.create_future() if loop is not None else concurrent.futures.Future()
        )

    def answer(self) -> None:
        """Settle the caller's future (on the caller's loop for async callers)."""
        future = self.future
        if future.done():
            return
        if isinstance(self.outcome, BaseException):
            future.set_exception(self.outcome)
        else:
            future.set_result(self.outcome)


def _answer_on_loop(calls: list[_Call]) -> None:
    for call in calls:
        call.answer()


class GroupCommit:
    """Runs queued writes in shared transactions: one COMMIT (one fsync) for many callers.

    Whatever callers queue while a commit is in flight goes into the next transaction, and
    each caller is answered only after the COMMIT of its transaction succeeded. A batch is
    first run as one plain transaction; if any caller's write fails, it is rolled back and
    replayed with each caller in its own savepoint, so one caller's refusal or error undoes
    only its own work. A write may therefore run twice: it must be short and touch nothing
    but the session.
    """

    def __init__(self, db: Database, max_batch: int = 256) -> None:
        self.db = db
        self.max_batch = max_batch
        # PostgreSQL commits batches concurrently (waiting on the server, not the CPU). Four
        # overlapped more of those waits (jef-one's accept 0.43 of the ceiling against 0.31),
        # but batches of calls that each lock several rows (an Ikonomikal session and its
        # subscriber's code counter) then deadlocked so often under load that callers ran
        # out of retries. SQLite has one writer, so a second batch would only wait for it.
        self.max_in_flight = 1 if db.is_sqlite else 2
        self._pending: list[_Call] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        self._committer: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._closed = False
        #: times a caller whose write lost a race (a deadlock) is run again before it is told
        self.race_retries = 5
        #: called with each batch's size before it runs (metrics)
        self.on_batch: Callable[[int], None] | None = None

    # -- callers ------------------------------------------------------------------

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in the next shared transaction; return its result once durable."""
        result: T = await self.run_many(_Single(fn), None)
        return result

    async def run_many(self, write: BatchWrite, item: Any) -> Any:
        """Queue item for `write`, called once for all items queued with it; its outcome."""
        loop = asyncio.get_running_loop()
        call = _Call(write, item, loop)
        self._queue(call, loop)
        return await call.future  # type: ignore[misc]

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        """`run` for a thread: blocks until fn's transaction is durable."""
        if getattr(self._local, "committing", False):
            raise RuntimeError("a group write cannot wait for another group write")
        result: T = self.submit(fn).result()
        return result

    def submit(self, fn: Callable[[Session], T]) -> concurrent.futures.Future[T]:
        """Queue fn(session) without waiting: a future settled once its commit is durable."""
        future: concurrent.futures.Future[T] = self.submit_many(_Single(fn), None)
        return future

    def submit_many(self, write: BatchWrite, item: Any) -> concurrent.futures.Future[Any]:
        """`run_many` without waiting (for a thread): a future of item's outcome."""
        call = _Call(write, item, None)
        self._queue(call, None)
        future: concurrent.futures.Future[Any] = call.future  # type: ignore[assignment]
        return future

    # -- committer ----------------------------------------------------------------

    def _queue(self, call: _Call, loop: asyncio.AbstractEventLoop | None) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the database is closed")
            self._pending.append(call)
            start = len(self._pending) == 1 and self._in_flight < self.max_in_flight
            if start:
                self._in_flight += 1
                if self._committer is None:
                    self._committer = concurrent.futures.ThreadPoolExecutor(
                        self.max_in_flight, thread_name_prefix="writegate-commit"
                    )
                committer = self._committer
        if not start:
            return
        if loop is not None:
            # The rest of this loop iteration's requests join the first batch too.
            loop.call_soon(committer.submit, self._drain)
        else:
            committer.submit(self._drain)

    def _drain(self) -> None:
        """Commit queued writes, batch after batch, until none are left."""
        self._local.committing = True
        try:
            while True:
                with self._lock:
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                    if not batch:
                        self._in_flight -= 1
                        return
                try:
                    self._commit(batch)
                finally:
                    self._answer(batch)
        finally:
            self._local.committing = False

    def _commit(self, batch: list[_Call]) -> None:
        # Batches in flight together on PostgreSQL mix unrelated callers, so they may lock rows in
        # opposite orders; the server then aborts one. Whatever lost is not committed: run it
        # again once the winner is through, rather than answer a client with the deadlock.
        # Each write in a transaction of its own: run together again, the first writes' locks
        # were held while a later one waited, and under a steady mix of writes (jobs completed
        # early in a batch, a global counter taken later) every retry closed a cycle again.
        self._commit_once(batch)
        for attempt in range(self.race_retries):
            lost = [c for c in batch if _lost_race(c.outcome)]
            if not lost:
                return
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
            for _, calls in _by_write(lost):
                self._commit_once(calls)

    def _commit_once(self, batch: list[_Call]) -> None:
        if self.on_batch is not None:
            self.on_batch(len(batch))
        for call in batch:
            call.outcome = None  # a call run again after a lost race: not failed yet
        try:
            with self.db.write() as session:
                failed = False
                for write, calls in _by_write(batch):
                    if isinstance(write, _Single) and len(batch) > 1:
                        # A one-caller write is isolated as it runs (one savepoint): its
                        # refusal is undone alone instead of replaying the whole batch.
                        _run_isolated(session, calls[0])
                        continue
                    try:
                        outcomes = write(session, [c.item for c in calls])
                    except Exception as exc:
                        for call in calls:  # replayed alone: the others keep their group
                            call.outcome = exc
                        raise
                    if len(outcomes) != len(calls):
                        raise RuntimeError(f"{write!r} gave {len(outcomes)} outcomes")
                    for call, outcome in zip(calls, outcomes, strict=True):
                        call.outcome = outcome
                        failed = failed or isinstance(outcome, BaseException)
                if failed:
                    raise _Replay
            return
        except _Replay:
            if len(batch) == 1:
                return  # rolled back; its one caller gets its own error
        except _LostRace as lost:
            for call in batch:  # nothing committed: `_commit` runs them again
                call.outcome = lost.error
            return
        except Exception as exc:
            if len(batch) == 1 or _lost_race(exc):
                for call in batch:  # a lost race: nothing committed, `_commit` runs it again
                    call.outcome = exc
                return
        except BaseException as exc:
            for call in batch:
                call.outcome = exc
            raise
        self._commit_isolated(batch)

    def _commit_isolated(self, batch: list[_Call]) -> None:
        """Replay a batch whose first run failed: the callers that failed each alone, in a
        savepoint of its own; the others of each write still together, in one savepoint
        (each alone too if that fails now)."""
        try:
            with self.db.write() as session:
                for write, calls in _by_write(batch):
                    failed = [c for c in calls if isinstance(c.outcome, BaseException)]
                    rest = [c for c in calls if not isinstance(c.outcome, BaseException)]
                    if len(rest) < 2 or not _run_together(session, write, rest):
                        failed = calls  # alone anyway, or one failed now that did not before
                    for call in failed:
                        _run_isolated(session, call)
        except _LostRace as lost:
            for call in batch:
                call.outcome = lost.error
        except BaseException as exc:
            for call in batch:  # nothing committed: every caller gets the error
                call.outcome = exc
            if not isinstance(exc, Exception):
                raise

    def _answer(self, batch: list[_Call]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
        for call in batch:
            if call.loop is None:
                call.answer()
            else:
                by_loop.setdefault(call.loop, []).append(call)
        # One wake-up per loop and batch, not one per caller.
        for loop, calls in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the caller's loop is already closed
                loop.call_soon_threadsafe(_answer_on_loop, calls)

    def close(self) -> None:
        """Finish what is queued, then stop the commit threads."""
        with self._lock:
            self._closed = True
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.shutdown(wait=True)


def _outcomes(session: Session, write: BatchWrite, calls: list[_Call]) -> list[Any]:
    """One outcome per call; a write that raised gives its exception to every call."""
    try:
        outcomes = write(session, [c.item for c in calls])
    except Exception as exc:
        return [exc] * len(calls)
    if len(outcomes) != len(calls):
        raise RuntimeError(f"{write!r} gave {len(outcomes)} outcomes")
    return outcomes


def _run_together(session: Session, write: BatchWrite, calls: list[_Call]) -> bool:
    """Run calls of one write together in a savepoint; False (undone) if any of them failed."""
    with _savepoint(session) as undo:
        outcomes = _outcomes(session, write, calls)
        lost = next((o for o in outcomes if _lost_race(o)), None)
        if lost is not None:
            raise _LostRace(lost)
        if any(isinstance(o, BaseException) for o in outcomes):
            undo()
            return False
    for call, outcome in zip(calls, outcomes, strict=True):
        call.outcome = outcome
    return True


def _run_isolated(session: Session, call: _Call) -> None:
    """Run one caller's write in a savepoint of its own, undone alone if it fails."""
    with _savepoint(session) as undo:
        try:
            call.outcome = call.write(session, [call.item])[0]
        except Exception as exc:
            call.outcome = exc
        if _lost_race(call.outcome):
            # The server made this transaction a deadlock's victim, but rolling back the
            # savepoint keeps the locks the other side waits for (the next caller would
            # deadlock again, a second each). Give up the whole transaction; `_commit`
            # runs it again.
            raise _LostRace(call.outcome)
        if isinstance(call.outcome, BaseException):
            undo()


def _lost_race(outcome: Any) -> bool:
    """Whether an outcome is the database aborting a transaction that lost a race."""
    orig = getattr(outcome, "orig", None)
    return getattr(orig, "sqlstate", None) in _LOST_RACE


class _Replay(Exception):
    """A caller's write failed: roll the batch back and replay it with savepoints."""


class _LostRace(Exception):
    """A caller's write lost a deadlock in the savepoint replay: roll the whole batch back."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _by_write(batch: list[_Call]) -> list[tuple[BatchWrite, list[_Call]]]:
    """The batch's calls grouped by write, the writes in one fixed order (see `_lock_order`)."""
    groups: dict[object, tuple[BatchWrite, list[_Call]]] = {}
    for call in batch:
        # By equality, not identity: each `obj.method` is a new bound method, equal to the others.
        key = call.write if not isinstance(call.write, _Single) else id(call)
        groups.setdefault(key, (call.write, []))[1].append(call)
    return sorted(groups.values(), key=lambda group: _lock_order(group[0]))


def _lock_order(write: BatchWrite) -> tuple[bool, str]:
    """Where a write runs in its batch: batch writes by name, then one-caller writes.

    Concurrent batches on PostgreSQL that ran the same writes in different orders took their
    locks in different orders (ABS's version counter, then an Ikonomikal code counter, in
    one; the other way round in the next) and deadlocked. The writes of concurrent callers
    commute, so any fixed order is correct; the sort is stable, so ties keep queue order.
    """
    if isinstance(write, _Single):
        return True, ""
    fn = getattr(write, "__func__", write)  # a bound method: its function
    name = getattr(fn, "__qualname__", None) or type(write).__qualname__
    return False, f"{getattr(fn, '__module__', '')}.{name}"


@contextlib.contextmanager
def _savepoint(session: Session) -> Iterator[Callable[[], None]]:
    nested = session.begin_nested()
    undone = False

    def undo() -> None:
        nested.rollback()
        nonlocal undone
        undone = True

    try:
        yield undo
    except BaseException:
        if nested.is_active:
            nested.rollback()
        raise
    if not undone:
        nested.commit()
