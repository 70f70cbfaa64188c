"""Group commit: concurrent writers share one durable COMMIT, each isolated from the others."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from sqlalchemy.util import await_, greenlet_spawn

from writegate.core.db.batch_run import (
    BatchWrite,
    Call,
    Single,
    Transaction,
    not_run,
    run_batch,
)

T = TypeVar("T")

#: turns of the event loop a batch on it waits at most for callers still coming in
_GATHER_TURNS = 3


class WriterBusy(BaseException):
    """An attached loop's SQLite transaction found the writer lock taken: nothing ran.

    A BaseException, as `run_batch` gives an Exception to the batch's callers as theirs.
    """


class _Call(Call):
    """One caller's write, and how to answer it."""

    __slots__ = ("future", "loop")

    def __init__(
        self, write: BatchWrite, item: Any, loop: asyncio.AbstractEventLoop | None
    ) -> None:
        super().__init__(write, item)
        self.loop = loop
        #: async callers get an asyncio future settled on their loop; the others this one
        self.future: asyncio.Future[Any] | concurrent.futures.Future[Any] = (
            loop.create_future() if loop is not None else concurrent.futures.Future()
        )

    def answer(self) -> None:
        """Settle the caller's future (on the caller's loop for async callers)."""
        future = self.future
        if future.done():
            return
        if isinstance(self.outcome, asyncio.CancelledError):
            future.cancel()
        elif isinstance(self.outcome, BaseException):
            future.set_exception(self.outcome)
        else:
            future.set_result(self.outcome)


def _answer_on_loop(calls: list[_Call]) -> None:
    for call in calls:
        call.answer()


class _Lane:
    """Callers queued for one committer (commit threads, or a loop), its batches in flight."""

    __slots__ = ("in_flight", "pending")

    def __init__(self) -> None:
        self.pending: list[_Call] = []
        self.in_flight = 0


class _Home(_Lane):
    """The attached event loop's lane: its write transactions, and its batches' tasks."""

    __slots__ = ("loop", "tasks", "transaction")

    def __init__(self, loop: asyncio.AbstractEventLoop, transaction: Transaction) -> None:
        super().__init__()
        self.loop = loop
        self.transaction = transaction
        self.tasks: set[asyncio.Task[None]] = set()  # a loop keeps only weak references


class GroupCommit:
    """Runs queued writes in shared transactions: one COMMIT (one fsync) for many callers.

    Whatever callers queue while a commit is in flight goes into the next transaction, and
    each caller is answered only after the COMMIT of its transaction succeeded; one caller's
    refusal or error undoes only its own work (see `run_batch`). A write may therefore run
    twice: it must be short and touch nothing but the session.

    Batches run on the event loop of their async callers (`attach`), or on commit threads.
    """

    def __init__(self, transaction: Transaction, *, one_writer: bool, max_batch: int = 256) -> None:
        #: the commit threads' write transactions
        self._transaction = transaction
        self.max_batch = max_batch
        # PostgreSQL commits batches concurrently (waiting on the server, not the CPU). Four
        # overlapped more of those waits (jef-one's accept 0.43 of the ceiling against 0.31),
        # but batches of calls that each lock several rows (an Ikonomikal session and its
        # subscriber's code counter) then deadlocked so often under load that callers ran
        # out of retries. SQLite has one writer, so a second batch would only wait for it.
        self.max_in_flight = 1 if one_writer else 2
        #: SQLite: the commit threads and the attached loop take turns with the one writer
        self._one_writer = one_writer
        self._threads = _Lane()
        #: the event loop whose async callers' batches run on it (see `attach`)
        self._home: _Home | None = None
        self._lock = threading.Lock()
        self._committer: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._closed = False
        #: times a caller whose write lost a race (a deadlock) is run again before it is told
        self.race_retries = 5
        #: called with each batch's size once its transaction has begun (metrics)
        self.on_batch: Callable[[int], None] | None = None
        #: called when an attached loop's batch met `WriterBusy` and went to a commit thread
        self.on_writer_busy: Callable[[], None] | None = None

    # -- callers ------------------------------------------------------------------

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in the next shared transaction; return its result once durable."""
        result: T = await self.run_many(Single(fn), None)
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
        home = self._home
        if self._one_writer and home is not None and _running_loop() is home.loop:
            # Its batch would wait for the writer that a batch of this loop may hold.
            raise RuntimeError("run_sync would block the event loop that commits on SQLite")
        call = _Call(Single(fn), None, None)
        # To the commit threads even from the attached loop's thread, which it blocks.
        self._queue(call, None)
        result: T = call.future.result()
        return result

    def submit(self, fn: Callable[[Session], T]) -> concurrent.futures.Future[T]:
        """Queue fn(session) without waiting: a future settled once its commit is durable."""
        future: concurrent.futures.Future[T] = self.submit_many(Single(fn), None)
        return future

    def submit_many(self, write: BatchWrite, item: Any) -> concurrent.futures.Future[Any]:
        """`run_many` without waiting (for a thread): a future of item's outcome.

        From the attached loop's own thread (an action after one of its batches' COMMIT, such
        as short jobs handed to the worker), the write joins that loop's batches.
        """
        call = _Call(write, item, None)
        self._queue(call, _running_loop())
        future: concurrent.futures.Future[Any] = call.future  # type: ignore[assignment]
        return future

    def queued(self) -> list[BatchWrite]:
        """The write of each caller queued and not yet in a batch (the attached loop's too)."""
        with self._lock:
            home = self._home
            calls = self._threads.pending + (home.pending if home is not None else [])
            return [c.write for c in calls]

    # -- the attached loop --------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop, transaction: Transaction) -> None:
        """Commit the batches of `loop`'s async callers on that loop, in `transaction`s.

        A batch's code runs in a greenlet on the loop, rather than on a commit thread, which
        waited for the GIL after each of its statements while the loop served requests;
        those waits, not the database, bounded every API's writes. On PostgreSQL (psycopg's
        async driver) its statements are awaited, so the loop serves requests meanwhile. On
        SQLite they run on the loop, the COMMIT's fsync included; with one writer, the loop
        and the commit threads take turns, and a loop's batch whose `transaction` raises
        `WriterBusy` (another connection holds the lock) runs on a commit thread, which waits
        for the lock instead of the loop. A `submit_many` from the loop's thread (short jobs
        handed to the worker at COMMIT) joins the loop's batches. Callers on other threads,
        and `run_sync` (which blocks its thread), go through the commit threads. A write must
        never block: it only runs statements on its session.
        """
        self._home = _Home(loop, transaction)

    def attached(self) -> asyncio.AbstractEventLoop | None:
        """The loop whose async callers' batches run on it (see `attach`), if any."""
        home = self._home
        return None if home is None else home.loop

    async def detach(self) -> None:
        """Stop committing on the attached loop, once its callers queued are committed."""
        home = self._home
        while home is not None:
            with self._lock:  # its callers queue on this thread: none can come in between
                if not home.in_flight and not home.pending:
                    self._home = None
                    return
            # Its batch's task may not be made yet, or the commit threads have the writer.
            await asyncio.gather(*home.tasks, asyncio.sleep(0.001), return_exceptions=True)

    # -- committers ---------------------------------------------------------------

    def _queue(self, call: _Call, on: asyncio.AbstractEventLoop | None) -> None:
        """Queue call from the event loop `on` (None: a thread's), in the attached loop's
        lane if it is that loop, else the commit threads'."""
        home = self._home
        lane: _Lane = home if home is not None and on is home.loop else self._threads
        with self._lock:
            if self._closed:
                raise RuntimeError("the database is closed")
            lane.pending.append(call)
            other = self._other(lane)
            start = (
                len(lane.pending) == 1
                and lane.in_flight < self.max_in_flight
                and (other is None or not other.in_flight)
            )
            if start:
                lane.in_flight += 1
        if not start:
            return
        if isinstance(lane, _Home):
            lane.loop.call_soon(self._start_at_home, lane)
        elif on is not None:
            on.call_soon(self._start_on_threads)
        else:
            self._start_on_threads()

    def _other(self, lane: _Lane) -> _Lane | None:
        """One writer: the lane that takes turns with `lane`; None if it has none."""
        if not self._one_writer:
            return None
        other = self._home if lane is self._threads else self._threads
        if isinstance(other, _Home) and other.loop.is_closed():
            return None  # closed without `detach`: its callers can no longer be answered
        return other

    def _take(self, lane: _Lane, ran: bool) -> list[_Call]:
        """The lane's next batch; none: its committer ends, handing the one writer (after a
        batch `ran`) to the other lane if that has callers waiting."""
        with self._lock:
            other = self._other(lane)
            if other is not None and other.pending and (ran or not lane.pending):
                lane.in_flight -= 1
                other.in_flight += 1
                batch: list[_Call] = []
            else:
                other = None
                batch = lane.pending[: self.max_batch]
                del lane.pending[: self.max_batch]
                if not batch:
                    lane.in_flight -= 1
        if other is not None:
            self._start(other)
        return batch

    def _start(self, lane: _Lane) -> None:
        """Start the committer of a lane whose turn was counted, from any thread."""
        if isinstance(lane, _Home):
            lane.loop.call_soon_threadsafe(self._start_at_home, lane)
        else:
            self._start_on_threads()

    def _commit_threads(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._committer is None:
                self._committer = concurrent.futures.ThreadPoolExecutor(
                    self.max_in_flight, thread_name_prefix="writegate-commit"
                )
            return self._committer

    def _start_on_threads(self) -> None:
        self._commit_threads().submit(self._drain)

    def _drain(self) -> None:
        """Commit the threads' lane, batch after batch, until none are left."""
        with self._committing():
            ran = False
            while batch := self._take(self._threads, ran):
                ran = True
                try:
                    self._run_on_thread(batch)
                except Exception as exc:  # the batch could not run: its callers are told so
                    not_run(batch, exc)
                finally:
                    self._answer(batch)

    def _run_on_thread(self, batch: list[_Call]) -> None:
        """Run a batch on this commit thread (an attached loop's too, when it met WriterBusy)."""
        with self._committing():
            run_batch(batch, self._transaction, time.sleep, self.race_retries, self.on_batch)

    @contextlib.contextmanager
    def _committing(self) -> Iterator[None]:
        """Mark this thread as a committer while the block runs (see `run_sync`)."""
        outer = getattr(self._local, "committing", False)
        self._local.committing = True
        try:
            yield
        finally:
            self._local.committing = outer

    def _start_at_home(self, home: _Home, seen: int = 0, turns: int = 0) -> None:
        """Start the loop's committer once a turn of the loop queued no new caller (at most
        `_GATHER_TURNS` turns), so that its first batch takes the burst of requests whole."""
        # On SQLite a batch holds the loop until its COMMIT: started at the first turn, it took
        # the requests parsed so far, and the rest of the burst paid a second COMMIT after it.
        queued = len(home.pending)
        if queued != seen and turns < _GATHER_TURNS:
            home.loop.call_soon(self._start_at_home, home, queued, turns + 1)
            return
        task = home.loop.create_task(self._drain_at_home(home))
        home.tasks.add(task)
        task.add_done_callback(home.tasks.discard)

    async def _drain_at_home(self, home: _Home) -> None:
        """`_drain` on the attached loop: a batch's I/O awaited, its code in a greenlet."""
        ran = False
        try:
            while batch := self._take(home, ran):
                ran = True
                await self._run_at_home(home, batch)
        except BaseException:  # cancelled: give the writer up, or the commit threads wait
            with self._lock:
                home.in_flight -= 1
                other = self._other(home)
                if other is None or not other.pending or other.in_flight:
                    other = None
                else:
                    other.in_flight += 1
            if other is not None:
                self._start(other)
            raise

    async def _run_at_home(self, home: _Home, batch: list[_Call]) -> None:
        try:
            try:
                await greenlet_spawn(
                    run_batch,
                    batch,
                    home.transaction,
                    _pause_in_greenlet,
                    self.race_retries,
                    self.on_batch,
                )
            except WriterBusy:  # nothing ran: a commit thread waits for the lock instead
                if self.on_writer_busy is not None:
                    self.on_writer_busy()
                await asyncio.wrap_future(self._commit_threads().submit(self._run_on_thread, batch))
        except Exception as exc:  # the batch could not run (greenlet missing): callers are told
            not_run(batch, exc)
        finally:
            _answer_on_loop(batch)

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


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _pause_in_greenlet(seconds: float) -> None:
    """time.sleep for a batch run in a greenlet: the loop goes on meanwhile."""
    await_(asyncio.sleep(seconds))
