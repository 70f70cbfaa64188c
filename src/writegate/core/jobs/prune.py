"""Deleting final jobs that finished long ago, in short batches (SQLAlchemy Core, no ORM).

The one implementation behind the workers' housekeeping (`JobManager.prune`) and
`writegate jobs prune`: both hand it a plain connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Integer, bindparam, delete, func, select

from writegate.core.jobs.status import FINAL, Status
from writegate.core.jobs.table import JOBS

if TYPE_CHECKING:
    from sqlalchemy import Connection

_C = JOBS.c
#: a final job of the statuses `p_statuses` that finished before `p_before`
_OLD = (
    _C.status.in_(FINAL),
    _C.finished_at < bindparam("p_before", type_=_C.finished_at.type),
    _C.status.in_(bindparam("p_statuses", expanding=True)),
)
#: how many jobs a prune would delete
COUNT = select(func.count()).select_from(JOBS).where(*_OLD)
#: one batch: the `p_limit` oldest of them
BATCH = delete(JOBS).where(
    _C.id.in_(
        select(_C.id)
        .where(*_OLD)
        .order_by(_C.finished_at)
        .limit(bindparam("p_limit", type_=Integer))
        .scalar_subquery()
    )
)


def prune(
    conn: Connection,
    before: datetime,
    *,
    statuses: Sequence[str] = FINAL,
    batch: int = 1000,
    dry_run: bool = False,
) -> int:
    """Delete final jobs of `statuses` that finished before `before`; how many (would) go.

    Each batch is a transaction of its own on `conn` (a writer's), which must not be in one.
    """
    wanted = [Status(s).value for s in statuses if Status(s).value in FINAL]
    params = {"p_before": before, "p_statuses": wanted, "p_limit": batch}
    if dry_run:
        with conn.begin():
            return int(conn.scalar(COUNT, params) or 0)
    deleted = 0
    while True:
        # One short transaction per batch: the claim never waits behind a long delete.
        with conn.begin():
            n = conn.execute(BATCH, params).rowcount
        deleted += n
        if n < batch:
            return deleted
