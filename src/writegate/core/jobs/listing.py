"""A job as an operator's list shows it, as plain data (the console's and the CLI's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def iso(at: datetime | None) -> str | None:
    """A naive UTC datetime as ISO 8601 with a Z."""
    return at.isoformat(timespec="seconds") + "Z" if at is not None else None


def summary(row: Any) -> dict[str, Any]:
    """A job's list fields from its row or snapshot: whole id, status, attempts, last error."""
    error = (row.error or "").strip().splitlines()
    return {
        "id": row.id,
        "kind": row.kind,
        "tenant": row.tenant,
        "status": str(row.status),
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "exclusive_key": row.exclusive_key,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "finished_at": iso(row.finished_at),
        "error": error[-1][:300] if error else None,
    }
