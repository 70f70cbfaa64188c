"""Parsing `writegate jobs` options: durations, job filters, page cursors (no heavy imports)."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

from writegate.commands.common import USAGE, fail

if TYPE_CHECKING:
    from writegate.core.jobs.operator import Cursor, JobFilter

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = ("succeeded", "failed", "cancelled")
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> timedelta | None:
    """A duration like 30m, 12h or 7d; None if the text is not one."""
    m = _DURATION.match(text.strip())
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}) if m else None


def _bad(option: str, message: str) -> NoReturn:
    """One line naming the option, exit 2 (as typer's usage errors, without the usage text)."""
    fail(f"--{option}: {message}", USAGE)


def parse_duration(option: str, text: str) -> timedelta:
    """A positive duration, or a usage error naming the option (exit 2)."""
    got = duration(text)
    if got is None or got <= timedelta(0):
        _bad(option, f"{text!r} is not a duration like 30m, 12h or 7d")
    return got


def _when(option: str, text: str, now: datetime) -> datetime:
    ago = duration(text)
    if ago is not None:
        return now - ago
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        _bad(option, f"{text!r} is not ISO 8601 nor an age like 15m, 2h, 7d")
    if at.tzinfo is not None:
        at = (at - at.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return at


def split(text: str | None) -> tuple[str, ...]:
    """The comma-separated values of an option."""
    return tuple(v.strip() for v in (text or "").split(",") if v.strip())


def statuses(text: str | None, allowed: tuple[str, ...] = STATUSES) -> tuple[str, ...]:
    """Comma-separated statuses, each one of `allowed`."""
    values = split(text)
    for v in values:
        if v not in allowed:
            _bad("status", f"unknown status {v!r}: one of {', '.join(allowed)}")
    return values


def job_filter(
    now: datetime,
    *,
    status: str | None = None,
    kind: str | None = None,
    tenant: str | None = None,
    since: str | None = None,
    until: str | None = None,
    text: str | None = None,
) -> tuple[JobFilter, dict[str, str]]:
    """The filter of the options, and the options as given (for the audit log)."""
    raw = {
        k: v
        for k, v in {
            "status": status,
            "kind": kind,
            "tenant": tenant,
            "since": since,
            "until": until,
            "q": text,
        }.items()
        if v
    }
    start = _when("since", since, now) if since else None
    end = _when("until", until, now) if until else None
    if start is not None and end is not None and start >= end:
        _bad("until", "must be after --since")
    wanted = statuses(status)
    # Imported once the options are known good: a usage error loads no database code.
    from writegate.core.jobs.operator import JobFilter

    f = JobFilter(wanted, split(kind), tenant or None, text or None, start, end)
    return f, raw


def encode_cursor(cursor: Cursor | None) -> str | None:
    """An opaque text form of a page cursor."""
    if cursor is None:
        return None
    raw = f"{cursor[0].isoformat()}|{cursor[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor `encode_cursor` gave, or a usage error naming --cursor."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, _, job_id = raw.partition("|")
        if not job_id or len(job_id) > 36:
            raise ValueError(raw)
        return datetime.fromisoformat(at), job_id
    except ValueError:
        _bad("cursor", "not a cursor `jobs list --json` gave")
