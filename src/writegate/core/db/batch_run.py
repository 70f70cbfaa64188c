"""One group-commit batch in one transaction: each caller isolated, lost races run again."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy.orm import Session

#: opens a write transaction: committed when its block ends, rolled back on an error
Transaction = Callable[[], AbstractContextManager[Session]]

#: PostgreSQL's SQLSTATEs for a transaction that lost a race to another one and may simply run
#: again: deadlock_detected, serialization_failure
_LOST_RACE = frozenset({"40P01", "40001"})


class BatchWrite(Protocol):
    """A write that takes every queued caller's item at once: one outcome per item, in order.

    An outcome is the caller's result, or an exception raised to that caller alone (its work
    is then rolled back: the batch is replayed with each item in a savepoint of its own).
    """

    def __call__(self, session: Session, items: list[Any], /) -> list[Any]: ...


class Single:
    """A one-caller write: fn(session), as a BatchWrite of one item."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Session], Any]) -> None:
        self.fn = fn

    def __call__(self, session: Session, items: list[Any]) -> list[Any]:
        try:
            return [self.fn(session)]
        except Exception as exc:
            return [exc]


class WriteNotRun(RuntimeError):
    """A caller's write never ran (its batch failed before it): never answered as a success."""


class Call:
    """One caller's write in a batch: what to run, and its outcome once run."""

    __slots__ = ("item", "outcome", "write")

    def __init__(self, write: BatchWrite, item: Any) -> None:
        self.write = write
        self.item = item
        #: the caller's result, or the exception raised to it alone
        self.outcome: Any = WriteNotRun("the write did not run")


def not_run(batch: Sequence[Call], error: BaseException) -> None:
    """Give `error` to each call of a batch that could not run, or not to its end."""
    for call in batch:
        if isinstance(call.outcome, WriteNotRun):
            call.outcome = error


def run_batch(
    batch: Sequence[Call],
    transaction: Transaction,
    pause: Callable[[float], None],
    race_retries: int,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Run a batch's writes in a shared transaction; each call's outcome set on it.

    First as one plain transaction; if any caller's write fails, it is rolled back and
    replayed with each caller in its own savepoint, so one caller's refusal or error undoes
    only its own work. A call whose transaction lost a race (a deadlock) runs again, up to
    `race_retries` times, after `pause`-ing.
    """
    # Batches in flight together on PostgreSQL mix unrelated callers, so they may lock rows in
    # opposite orders; the server then aborts one. Whatever lost is not committed: run it
    # again once the winner is through, rather than answer a client with the deadlock.
    # Each write in a transaction of its own: run together again, the first writes' locks
    # were held while a later one waited, and under a steady mix of writes (jobs completed
    # early in a batch, a global counter taken later) every retry closed a cycle again.
    _run_once(batch, transaction, on_batch)
    for attempt in range(race_retries):
        lost = [c for c in batch if _lost_race(c.outcome)]
        if not lost:
            return
        pause(random.uniform(0, 0.002 * 2**attempt))
        for write, calls in _by_write(lost):
            for again in [[c] for c in calls] if isinstance(write, Single) else [calls]:
                _run_once(again, transaction, on_batch)


def _run_once(
    batch: Sequence[Call], transaction: Transaction, on_batch: Callable[[int], None] | None
) -> None:
    for call in batch:
        call.outcome = None  # a call run again after a lost race: not failed yet
    try:
        with transaction() as session:
            if on_batch is not None:  # once begun: a batch met by WriterBusy counts where it runs
                on_batch(len(batch))
            failed = False
            for write, calls in _by_write(batch):
                if isinstance(write, Single) and len(batch) > 1:
                    # One-caller writes are isolated as they run (one savepoint for them
                    # all): a refusal is undone with them alone instead of replaying the
                    # whole batch.
                    _run_singles(session, calls)
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
        for call in batch:  # nothing committed: `run_batch` runs them again
            call.outcome = lost.error
        return
    except Exception as exc:
        if len(batch) == 1 or _lost_race(exc):
            for call in batch:  # a lost race: nothing committed, `run_batch` runs it again
                call.outcome = exc
            return
    except BaseException as exc:
        for call in batch:
            call.outcome = exc
        raise
    _run_isolated_batch(batch, transaction)


def _run_isolated_batch(batch: Sequence[Call], transaction: Transaction) -> None:
    """Replay a batch whose first run failed: the callers that failed each alone, in a
    savepoint of its own; the others of each write still together, in one savepoint
    (each alone too if that fails now). One-caller writes run as in the first run."""
    try:
        with transaction() as session:
            for write, calls in _by_write(batch):
                if isinstance(write, Single):
                    _run_singles(session, calls)
                    continue
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


def _run_singles(session: Session, calls: list[Call]) -> None:
    """One-caller writes, together in one savepoint until one fails: then the ones before it
    run again together, and it and the ones after it each alone."""
    if len(calls) == 1:
        _run_isolated(session, calls[0])
        return
    failed = None
    with _savepoint(session) as undo:
        for i, call in enumerate(calls):
            call.outcome = call.write(session, [call.item])[0]
            if _ends_transaction(call.outcome):
                raise _LostRace(call.outcome)  # as in `_run_isolated`
            if isinstance(call.outcome, BaseException):
                undo()
                failed = i
                break
    if failed is None:
        return
    # The failed one runs again too: its refusal may name what the writes before it wrote
    # (an exclusive key's job), which they write anew.
    if failed:
        _run_singles(session, calls[:failed])
    for call in calls[failed:]:
        _run_isolated(session, call)


def _outcomes(session: Session, write: BatchWrite, calls: list[Call]) -> list[Any]:
    """One outcome per call; a write that raised gives its exception to every call."""
    try:
        outcomes = write(session, [c.item for c in calls])
    except Exception as exc:
        return [exc] * len(calls)
    if len(outcomes) != len(calls):
        raise RuntimeError(f"{write!r} gave {len(outcomes)} outcomes")
    return outcomes


def _run_together(session: Session, write: BatchWrite, calls: list[Call]) -> bool:
    """Run calls of one write together in a savepoint; False (undone) if any of them failed."""
    with _savepoint(session) as undo:
        outcomes = _outcomes(session, write, calls)
        lost = next((o for o in outcomes if _ends_transaction(o)), None)
        if lost is not None:
            raise _LostRace(lost)
        if any(isinstance(o, BaseException) for o in outcomes):
            undo()
            return False
    for call, outcome in zip(calls, outcomes, strict=True):
        call.outcome = outcome
    return True


def _run_isolated(session: Session, call: Call) -> None:
    """Run one caller's write in a savepoint of its own, undone alone if it fails."""
    with _savepoint(session) as undo:
        try:
            call.outcome = call.write(session, [call.item])[0]
        except Exception as exc:
            call.outcome = exc
        if _ends_transaction(call.outcome):
            # The server made this transaction a deadlock's victim, but rolling back the
            # savepoint keeps the locks the other side waits for (the next caller would
            # deadlock again, a second each). Give up the whole transaction; `run_batch`
            # runs it again. A lost connection ends it too: there is no savepoint to go
            # back to, and its error is every caller's.
            raise _LostRace(call.outcome)
        if isinstance(call.outcome, BaseException):
            undo()


def _lost_race(outcome: Any) -> bool:
    """Whether an outcome is the database aborting a transaction that lost a race."""
    orig = getattr(outcome, "orig", None)
    return getattr(orig, "sqlstate", None) in _LOST_RACE


def _ends_transaction(outcome: Any) -> bool:
    """Whether an outcome ends the whole transaction: a lost race, or a lost connection."""
    return _lost_race(outcome) or bool(getattr(outcome, "connection_invalidated", False))


class _Replay(Exception):
    """A caller's write failed: roll the batch back and replay it with savepoints."""


class _LostRace(Exception):
    """A caller's write lost a deadlock (or its connection) in the savepoint replay: roll the
    whole batch back."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _by_write(batch: Sequence[Call]) -> list[tuple[BatchWrite, list[Call]]]:
    """The batch's calls grouped by write, the writes in one fixed order (see `_lock_order`)."""
    groups: dict[object, tuple[BatchWrite, list[Call]]] = {}
    for call in batch:
        # By equality, not identity: each `obj.method` is a new bound method, equal to the others.
        key = call.write if not isinstance(call.write, Single) else Single
        groups.setdefault(key, (call.write, []))[1].append(call)
    return sorted(groups.values(), key=lambda group: _lock_order(group[0]))


def _lock_order(write: BatchWrite) -> tuple[bool, str]:
    """Where a write runs in its batch: batch writes by name, then one-caller writes.

    Concurrent batches on PostgreSQL that ran the same writes in different orders took their
    locks in different orders (ABS's version counter, then an Ikonomikal code counter, in
    one; the other way round in the next) and deadlocked. The writes of concurrent callers
    commute, so any fixed order is correct; the sort is stable, so ties keep queue order.
    """
    if isinstance(write, Single):
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
