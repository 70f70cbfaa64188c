"""A job as the code sees it: an immutable snapshot of its row (no ORM).

The ORM model (`model.JobRow`) and the Core reads (`writegate jobs show`) both give one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from writegate.core.jobs.status import Status
from writegate.core.jobs.table import JOBS

#: every column, in table order: the order of a claimed row
COLUMNS = tuple(c.name for c in JOBS.columns)


@dataclass(frozen=True)
class Job:
    """An immutable snapshot of a job row."""

    id: str
    kind: str
    tenant: str
    principal: str | None
    payload: Any
    status: Status
    attempts: int
    max_attempts: int
    run_after: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    timeout_at: datetime | None
    progress: Any | None
    checkpoint: Any | None
    result: Any | None
    error: str | None
    exclusive_key: str | None
    idempotency_key: str | None
    after_id: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: the request id and W3C traceparent of the request that enqueued it
    trace_context: dict[str, str] | None = None
    #: after_id while that job is still active (the job is not claimable until then)
    waiting_on: str | None = None
    #: False when enqueue returned an existing job for the same idempotency key.
    created: bool = field(default=True, compare=False)

    @classmethod
    def from_row(cls, row: Any, *, created: bool = True) -> Job:
        """Snapshot a row (an ORM `JobRow` or a Core row of every column)."""
        return cls.from_values(COLUMNS, [getattr(row, c) for c in COLUMNS], created=created)

    @classmethod
    def from_values(
        cls, names: Sequence[str], values: Sequence[Any], *, created: bool = True
    ) -> Job:
        """The Job of a row's values, columns in `names` order; unnamed columns are None."""
        return cls.from_mapping(zip(names, values, strict=True), created=created)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any] | Iterable[tuple[str, Any]], *, created: bool = True
    ) -> Job:
        """The Job of a row's values by column name; unnamed columns are None."""
        # A frozen dataclass's __init__ sets each field through object.__setattr__; filling
        # the new instance's __dict__ builds the same Job in a quarter of the time, which
        # counts for a batch of accepts or a claim.
        job = object.__new__(cls)
        fields = job.__dict__
        fields.update(_EMPTY)
        fields.update(values)
        fields["status"] = _STATUS[fields["status"]]
        fields["created"] = created
        return job


_EMPTY: dict[str, Any] = dict.fromkeys(COLUMNS)
#: a status value as its `Status` (a dict lookup: the Enum call costs more than the rest)
_STATUS: dict[str, Status] = {s.value: s for s in Status}
