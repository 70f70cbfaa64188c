"""Group commit on an attached event loop: the loop's callers' batches run on the loop."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.util import await_

from tests.harness import uid
from tests.system.conftest import core_services
from tests.system.test_core_group_commit import rows, scratch, typed
from writegate.core.db import after_commit
from writegate.core.services import Services

T = TypeVar("T")


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    """Core services; on SQLite on a file of their own: a lock another test's thread held on
    the session's file would send the loop's batch to a commit thread (`WriterBusy`)."""
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{tmp_path}/loop.db"
    with core_services(db_url, scratch) as svc:
        yield svc


def _postgres_only(services: Services) -> None:
    if not services.db.is_postgres:
        pytest.skip("PostgreSQL: SQLite runs one batch at a time, its statements not awaited")


def _attached(services: Services, main: Callable[[], Awaitable[T]]) -> T:
    """Run main() on a new event loop attached to the group commit, detached at its end."""

    async def run() -> T:
        services.db.attach_loop(asyncio.get_running_loop())
        try:
            return await main()
        finally:
            await services.db.detach_loop()

    return asyncio.run(run())


def _committed(services: Services, ids: list[str]) -> set[str]:
    with services.db.read() as s:
        return set(s.scalars(select(rows.c.id).where(rows.c.id.in_(ids))))


def test_the_loops_callers_share_one_commit_run_on_the_loops_thread(services: Services) -> None:
    ids = [uid("loop-") for _ in range(8)]
    seen: list[tuple[int, list[str]]] = []

    def write_many(s: Session, items: list[str]) -> list[str]:
        seen.append((threading.get_ident(), list(items)))
        s.execute(insert(rows), [{"id": i} for i in items])
        return items

    async def main() -> tuple[list[str], set[str]]:
        answers = await asyncio.gather(*(services.db.group.run_many(write_many, i) for i in ids))
        return answers, _committed(services, ids)  # read at once: durable when answered

    answers, committed = _attached(services, main)
    assert answers == ids
    assert committed == set(ids)
    assert seen == [(threading.get_ident(), ids)]  # this thread, one call: one transaction


def _one_a_turn(services: Services, ids: list[str]) -> tuple[list[str], list[list[str]]]:
    """Queue a caller for each id, one a turn of the attached loop: the answers, and the items
    of each call of the write (one call per batch)."""
    batches: list[list[str]] = []

    def write_many(s: Session, items: list[str]) -> list[str]:
        batches.append(list(items))
        s.execute(insert(rows), [{"id": i} for i in items])
        return items

    async def main() -> list[str]:
        callers = []
        for i in ids:
            callers.append(asyncio.ensure_future(services.db.group.run_many(write_many, i)))
            await asyncio.sleep(0)  # the next caller comes a turn of the loop later
        return list(await asyncio.gather(*callers))

    return _attached(services, main), batches


def test_regression_a_loop_batch_waits_for_callers_still_coming_in(services: Services) -> None:
    # A batch started at the first turn took the callers parsed so far; on SQLite the rest of
    # the burst then waited behind it on the loop and paid a second COMMIT (jef-one's accept
    # 0.79 -> 0.88 of its ceiling when a batch waited for them).
    ids = [uid("turn-") for _ in range(3)]
    answers, batches = _one_a_turn(services, ids)
    assert answers == ids
    assert batches == [ids]
    assert _committed(services, ids) == set(ids)


def test_a_loop_batch_starts_while_callers_keep_coming(services: Services) -> None:
    ids = [uid("stream-") for _ in range(20)]
    answers, batches = _one_a_turn(services, ids)
    assert answers == ids
    assert len(batches) > 1  # the first did not wait for the stream to end
    assert [i for batch in batches for i in batch] == ids
    assert _committed(services, ids) == set(ids)


def test_the_loop_serves_other_tasks_while_its_batch_waits_for_the_server(
    services: Services,
) -> None:
    _postgres_only(services)
    ticks: list[float] = []

    def slow(s: Session) -> str:
        s.execute(text("SELECT pg_sleep(0.5)"))
        return "slept"

    async def tick() -> None:
        while True:
            ticks.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.01)

    async def main() -> str:
        ticker = asyncio.create_task(tick())
        try:
            return await services.db.group.run(slow)
        finally:
            ticker.cancel()

    assert _attached(services, main) == "slept"
    assert len(ticks) >= 20  # every 10 ms through the half second the server slept


def test_a_refused_caller_on_the_loop_is_rolled_back_alone(services: Services) -> None:
    ids = [uid("refuse-") for _ in range(4)]
    refused = ids[1]

    def write_many(s: Session, items: list[str]) -> list[Any]:
        s.execute(insert(rows), [{"id": i} for i in items])
        return [ValueError(f"no {i}") if i == refused else i for i in items]

    async def main() -> list[Any]:
        many = [services.db.group.run_many(write_many, i) for i in ids]
        return await asyncio.gather(*many, return_exceptions=True)

    outcomes = _attached(services, main)
    assert [isinstance(o, ValueError) for o in outcomes] == [False, True, False, False]
    assert _committed(services, ids) == set(ids) - {refused}


def test_a_deadlock_lost_on_the_loop_runs_again_and_both_commit(services: Services) -> None:
    """Two batches in flight on one loop lock two rows in opposite orders; the loser waits
    on the loop (not a sleep of its thread) and runs again."""
    _postgres_only(services)
    first, second = uid("row-"), uid("row-")
    with services.db.write() as s:
        s.execute(insert(typed).values([{"id": first, "n": 0}, {"id": second, "n": 0}]))
    runs: list[str] = []

    async def main() -> list[None]:
        both_hold_one = asyncio.Event()
        held = 0

        def bump(s: Session, mine: str, theirs: str) -> None:
            nonlocal held
            runs.append(mine)
            s.execute(typed.update().where(typed.c.id == mine).values(n=typed.c.n + 1))
            if runs.count(mine) == 1:  # the first run of each waits until both hold their row
                held += 1
                if held == 2:
                    both_hold_one.set()
                await_(asyncio.wait_for(both_hold_one.wait(), 30))
            s.execute(typed.update().where(typed.c.id == theirs).values(n=typed.c.n + 1))

        a = asyncio.ensure_future(services.db.group.run(lambda s: bump(s, first, second)))
        await asyncio.sleep(0.05)  # a's batch is in flight: b's is a second one
        b = asyncio.ensure_future(services.db.group.run(lambda s: bump(s, second, first)))
        return await asyncio.wait_for(asyncio.gather(a, b), 60)

    assert _attached(services, main) == [None, None]
    assert 3 <= len(runs) <= 2 + services.db.group.race_retries
    with services.db.read() as s:
        got = s.execute(select(typed.c.id, typed.c.n).where(typed.c.id.in_([first, second])))
        assert dict(got.all()) == {first: 2, second: 2}


def test_a_lost_connection_fails_its_batch_and_the_next_batch_connects_again(
    services: Services,
) -> None:
    _postgres_only(services)
    row = uid("after-")

    def killed(s: Session) -> None:
        s.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    def insert_row(s: Session) -> str:
        s.execute(insert(rows).values(id=row))
        return row

    async def main() -> tuple[BaseException | None, str]:
        try:
            await services.db.group.run(killed)
        except DBAPIError as exc:
            lost: BaseException | None = exc
        else:
            lost = None
        return lost, await services.db.group.run(insert_row)

    lost, written = _attached(services, main)
    assert isinstance(lost, DBAPIError)
    assert lost.connection_invalidated
    assert written == row
    assert _committed(services, [row]) == {row}


def test_detach_waits_for_the_batch_in_flight_then_callers_use_a_commit_thread(
    services: Services,
) -> None:
    threads: list[int] = []
    ids = [uid("detach-"), uid("detach-")]

    def write(row_id: str) -> Callable[[Session], str]:
        def fn(s: Session) -> str:
            threads.append(threading.get_ident())
            if len(threads) == 1:  # the first, on the loop: detach must wait for it
                await_(asyncio.sleep(0.2))
            s.execute(insert(rows).values(id=row_id))
            return row_id

        return fn

    async def main() -> tuple[str, str]:
        services.db.attach_loop(asyncio.get_running_loop())
        first = asyncio.ensure_future(services.db.group.run(write(ids[0])))
        await asyncio.sleep(0.05)  # its batch is in flight
        await services.db.detach_loop()
        assert first.done()  # detach waited for it
        return first.result(), await services.db.group.run(write(ids[1]))

    assert asyncio.run(main()) == (ids[0], ids[1])
    assert threads[0] == threading.get_ident()
    assert threads[1] != threading.get_ident()  # detached: a commit thread ran it
    assert _committed(services, ids) == set(ids)


def test_listen_and_the_pool_count_cover_the_attached_loops_engine(services: Services) -> None:
    statements: list[str] = []
    in_use: list[int] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def write(s: Session) -> None:
        s.execute(text("SELECT 'on the loop'"))
        in_use.append(services.db.connections_in_use())

    services.db.listen("before_cursor_execute", record)
    try:
        _attached(services, lambda: services.db.group.run(write))
    finally:
        services.db.unlisten("before_cursor_execute", record)
    assert "SELECT 'on the loop'" in statements
    assert in_use == [1]  # the batch's connection, from the loop's engine


def test_a_write_submitted_from_the_loops_thread_joins_its_batches_run_sync_does_not(
    services: Services,
) -> None:
    """An action after a loop batch's COMMIT (short jobs handed to the worker) queues its
    write on the loop; `run_sync` blocks its thread, so it takes a commit thread."""
    first, then, blocking = uid("loop-"), uid("loop-"), uid("loop-")
    threads: dict[str, int] = {}

    def write(row_id: str) -> Callable[[Session], str]:
        def fn(s: Session) -> str:
            threads[row_id] = threading.get_ident()
            s.execute(insert(rows).values(id=row_id))
            return row_id

        return fn

    async def main() -> str:
        submitted: list[Any] = []

        def queue_next(s: Session) -> str:
            after_commit(s, lambda: submitted.append(services.db.group.submit(write(then))))
            return write(first)(s)

        await services.db.group.run(queue_next)
        assert len(submitted) == 1
        answer: str = await asyncio.wrap_future(submitted[0])
        return answer

    assert _attached(services, main) == then
    assert threads[first] == threads[then] == threading.get_ident()
    assert services.db.group.run_sync(write(blocking)) == blocking
    assert threads[blocking] != threading.get_ident()
    assert _committed(services, [first, then, blocking]) == {first, then, blocking}


def test_run_sync_on_the_loops_thread_commits_on_postgresql(services: Services) -> None:
    _postgres_only(services)

    async def blocked_loop() -> str:
        return services.db.group.run_sync(_insert(uid("loop-")))

    assert _attached(services, blocked_loop).startswith("loop-")  # no deadlock on the loop


def test_run_sync_on_the_loops_thread_is_refused_on_sqlite(services: Services) -> None:
    """It would block the loop, whose batch may hold SQLite's one writer."""
    if services.db.is_postgres:
        pytest.skip("SQLite: PostgreSQL's loop and commit threads do not take turns")
    row = uid("loop-")

    async def blocked_loop() -> str:
        return services.db.group.run_sync(_insert(row))

    with pytest.raises(RuntimeError, match="block the event loop"):
        _attached(services, blocked_loop)
    assert _committed(services, [row]) == set()


def _insert(row_id: str) -> Callable[[Session], str]:
    def fn(s: Session) -> str:
        s.execute(insert(rows).values(id=row_id))
        return row_id

    return fn


def _sqlite_only(services: Services) -> None:
    if not services.db.is_sqlite:
        pytest.skip("SQLite: PostgreSQL has no one writer lock")


def test_sqlite_a_loop_batch_never_waits_for_the_writer_lock_on_the_loop(
    services: Services,
) -> None:
    """Another connection's transaction holds SQLite's lock: the loop's batch waits for it on
    a commit thread, and the loop serves other tasks meanwhile. The move is counted
    (`on_writer_busy`), and the batch once, by the committer that ran it (`on_batch`)."""
    _sqlite_only(services)
    row = uid("busy-")
    ran_on: list[int] = []
    group = services.db.group
    batches: list[int] = []
    moved: list[bool] = []
    hooks = group.on_batch, group.on_writer_busy
    group.on_batch, group.on_writer_busy = batches.append, lambda: moved.append(True)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with services.db.write() as s:  # outside the group commit, as a handler's session
            s.execute(insert(rows).values(id=uid("holder-")))
            holding.set()
            release.wait(30)

    def write(s: Session) -> str:
        ran_on.append(threading.get_ident())
        s.execute(insert(rows).values(id=row))
        return row

    async def main() -> tuple[str, float]:
        holder = threading.Thread(target=hold)
        holder.start()
        await asyncio.to_thread(holding.wait, 30)
        written = asyncio.ensure_future(services.db.group.run(write))
        loop = asyncio.get_running_loop()
        ticks = [loop.time()]
        while len(ticks) < 20:  # the loop runs on while the batch waits for the lock
            await asyncio.sleep(0.01)
            ticks.append(loop.time())
        assert not written.done()
        release.set()
        answer = await asyncio.wait_for(written, 30)
        holder.join(30)
        return answer, max(b - a for a, b in itertools.pairwise(ticks))

    try:
        written, longest_gap = _attached(services, main)
    finally:
        group.on_batch, group.on_writer_busy = hooks
    assert written == row
    assert (moved, batches) == ([True], [1])
    assert longest_gap < 1.0  # not stalled in SQLite's busy handler (seconds when it was)
    assert len(ran_on) == 1  # not begun on the loop: the lock was taken
    assert ran_on[0] != threading.get_ident()  # a commit thread ran it
    assert _committed(services, [row]) == {row}


class _Turns:
    """A write that holds SQLite's writer on a commit thread until released, and a quick one."""

    def __init__(self, prefix: str) -> None:
        self.first, self.second = uid(prefix), uid(prefix)
        self.ran_on: dict[str, int] = {}
        self.entered, self.release = threading.Event(), threading.Event()

    def slow(self, s: Session) -> str:
        self.ran_on[self.first] = threading.get_ident()
        s.execute(insert(rows).values(id=self.first))
        self.entered.set()
        self.release.wait(30)
        return self.first

    def fast(self, s: Session) -> str:
        self.ran_on[self.second] = threading.get_ident()
        s.execute(insert(rows).values(id=self.second))
        return self.second


def test_sqlite_the_loop_and_the_commit_threads_take_turns_with_the_writer(
    services: Services,
) -> None:
    """A commit thread's batch holds the writer: the loop's callers wait for their turn
    (queued, not refused by the lock) and their batch then runs on the loop."""
    _sqlite_only(services)
    t = _Turns("turn-")

    async def main() -> list[str]:
        from_thread = asyncio.ensure_future(asyncio.to_thread(services.db.group.run_sync, t.slow))
        await asyncio.to_thread(t.entered.wait, 30)
        from_loop = asyncio.ensure_future(services.db.group.run(t.fast))
        await asyncio.sleep(0.1)
        assert not from_loop.done()  # its turn comes after the commit thread's batch
        assert len(services.db.group.queued()) == 1
        t.release.set()
        return list(await asyncio.wait_for(asyncio.gather(from_thread, from_loop), 30))

    assert _attached(services, main) == [t.first, t.second]
    assert t.ran_on[t.first] != threading.get_ident()
    assert t.ran_on[t.second] == threading.get_ident()  # on the loop: it did not meet the lock
    assert _committed(services, [t.first, t.second]) == {t.first, t.second}


def test_sqlite_detach_waits_for_the_loops_callers_queued_behind_a_commit_thread(
    services: Services,
) -> None:
    """The loop's callers wait for their turn with the writer: detaching commits them first."""
    _sqlite_only(services)
    t = _Turns("detach-")

    async def main() -> tuple[bool, str]:
        services.db.attach_loop(asyncio.get_running_loop())
        from_thread = asyncio.ensure_future(asyncio.to_thread(services.db.group.run_sync, t.slow))
        await asyncio.to_thread(t.entered.wait, 30)
        from_loop = asyncio.ensure_future(services.db.group.run(t.fast))
        await asyncio.sleep(0)  # queued, its turn not yet come
        detached = asyncio.ensure_future(services.db.detach_loop())
        await asyncio.sleep(0.1)
        waited = not detached.done()
        t.release.set()
        await asyncio.wait_for(detached, 30)
        assert from_loop.done()  # committed before detach returned
        await from_thread
        return waited, from_loop.result()

    assert asyncio.run(main()) == (True, t.second)
    assert t.ran_on[t.second] == threading.get_ident()  # on the loop, in its turn
    assert _committed(services, [t.first, t.second]) == {t.first, t.second}


def test_sqlite_a_cancelled_loop_batch_gives_the_writer_to_the_commit_threads(
    services: Services,
) -> None:
    """Regression: a drain task cancelled mid-batch kept the writer's turn, and every write
    from another thread then waited for ever."""
    _sqlite_only(services)
    row = uid("after-cancel-")
    entered = asyncio.Event()

    def held(_s: Session) -> str:
        entered.set()
        await_(asyncio.sleep(30))
        return "never"

    async def main() -> str:
        services.db.attach_loop(asyncio.get_running_loop())
        try:
            loop_write = asyncio.ensure_future(services.db.group.run(held))
            await asyncio.wait_for(entered.wait(), 30)
            # From another thread: the commit threads' lane, waiting for its turn.
            queued = await asyncio.to_thread(services.db.group.submit, _insert(row))
            await asyncio.sleep(0.1)
            assert not queued.done()
            home = services.db.group._home  # the loop's lane: cancel its batch's task
            assert home is not None
            for task in list(home.tasks):
                task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loop_write
            written: str = await asyncio.wait_for(asyncio.wrap_future(queued), 10)
            return written
        finally:
            await asyncio.wait_for(services.db.detach_loop(), 10)

    assert asyncio.run(main()) == row
    assert _committed(services, [row]) == {row}
