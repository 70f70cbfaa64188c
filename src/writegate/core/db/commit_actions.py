"""Work to do once a write session's transaction is durable, undone with its savepoint.

A write queues an action (wake the worker, count jobs, hand jobs to a worker) with
`after_commit`; the `Database`'s write sessions run the actions after their COMMIT. An action
queued inside a savepoint that is rolled back (a group-commit caller whose write failed) is
dropped with it, as is every action of a transaction rolled back: only what was committed
has effects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

log = logging.getLogger("writegate.db")

_ACTIONS = "writegate_after_commit"
#: savepoint -> how many actions were queued when it began
_MARKS = "writegate_after_commit_marks"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run action once session's transaction has committed (never if it, or the savepoint
    it was queued in, is rolled back)."""
    session.info.setdefault(_ACTIONS, []).append(action)


def track(sessions: sessionmaker[Session]) -> None:
    """Make sessions of this maker run their actions after COMMIT and drop undone ones."""
    event.listen(sessions, "after_transaction_create", _began)
    event.listen(sessions, "after_soft_rollback", _rolled_back)
    event.listen(sessions, "after_commit", _committed)


def _began(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        marks = session.info.setdefault(_MARKS, {})
        marks[transaction] = len(session.info.get(_ACTIONS, ()))


def _rolled_back(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint undoes what was queued since it began; any other rollback ends the
    # transaction, and every action with it.
    mark = session.info.get(_MARKS, {}).pop(transaction, None) if transaction.nested else 0
    actions = session.info.get(_ACTIONS)
    if actions and mark is not None:
        del actions[mark:]


def _committed(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: its actions wait for COMMIT
        return
    session.info.pop(_MARKS, None)
    for action in session.info.pop(_ACTIONS, ()):
        # Raised from here, an error would fail a COMMIT that is already durable, and the
        # group commit would run its writes again.
        try:
            action()
        except Exception:
            log.exception("an action after COMMIT failed: %r", action)
