"""What an operator asks of the jobs: filters, page sizes and cursors, parsed from text.

The console, the admin API and `writegate jobs` parse with these alone (no database code);
each bad field is a `FieldProblem` the caller shows in its own form.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from writegate.core.jobs.status import Status
from writegate.core.problems import BadInput, FieldProblem
from writegate.core.text import problem, whole_number

STATUSES = tuple(s.value for s in Status)
MAX_LIMIT = 500
#: the fields of a filter, in the order they are shown and recorded
FIELDS = ("status", "kind", "tenant", "q", "since", "until")
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: longest value of one filter field
_MAX_TEXT = 200

#: (created_at, id) of the last job of a page; the next page starts after it.
Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class JobFilter:
    """Which jobs an operator asks for; empty fields match everything."""

    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    #: None means every tenant (only for principals that may see all of them)
    tenant: str | None = None
    #: an id prefix, or a part of the exclusive key
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Query:
    """A parsed job list request: the filter (before tenant scoping), page size and cursor."""

    filter: JobFilter
    limit: int
    cursor: Cursor | None
    #: the filter as given, to build links and audit entries
    raw: dict[str, str]


def duration(text: str) -> timedelta | None:
    """A duration like 30m, 12h, 7d or 2w; None if the text is not one."""
    m = _DURATION.match(text.strip())
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}) if m else None


def _bad(name: str, code: str, message: str) -> BadInput:
    return BadInput([FieldProblem(name, code, message)])


def moment(name: str, text: str, now: datetime) -> datetime:
    """An age before `now` (15m, 2h, 7d) or an ISO 8601 time, as naive UTC."""
    try:
        ago = duration(text)
        if ago is not None:
            return now - ago
        at = datetime.fromisoformat(text)
        if at.tzinfo is not None:
            at = (at - at.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    except OverflowError:
        raise _bad(name, "range", f"{text!r} is outside the years 1-9999 in UTC") from None
    except ValueError:
        raise _bad(
            name, "datetime", f"{text!r} is not ISO 8601 nor an age like 15m, 2h, 7d"
        ) from None
    return at


def statuses(values: list[str], allowed: tuple[str, ...] = STATUSES) -> tuple[str, ...]:
    """The statuses given, each one of `allowed`."""
    for v in values:
        if v not in allowed:
            raise _bad("status", "enum", f"unknown status {v!r}: one of {', '.join(allowed)}")
    return tuple(values)


def values(params: Mapping[str, Any], name: str) -> list[str]:
    """The comma-separated values of a field given once or several times."""
    value = params.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise _bad(name, "type", f"{name} must be a string")
        out += [v.strip() for v in item.split(",") if v.strip()]
    return out


def _field(params: Mapping[str, Any], name: str, now: datetime) -> tuple[list[str], Any]:
    """A field's values as given and as parsed (kinds and statuses: all; the rest: the last)."""
    given = values(params, name)
    if name not in ("kind", "status"):
        given = given[-1:]
    if any(len(v) > _MAX_TEXT for v in given):
        raise _bad(name, "too_long", f"{name} is longer than {_MAX_TEXT}")
    for v in given:  # no job holds such text; SQLite's LIKE stopped at a NUL and matched all
        reason = problem(v)
        if reason is not None:
            raise _bad(name, "text", f"{name} {reason}")
    if not given:
        return given, None
    if name == "status":
        return given, statuses(given)
    if name in ("since", "until"):
        return given, moment(name, given[0], now)
    return given, tuple(given) if name == "kind" else given[0]


def parse_filter(params: Mapping[str, Any], now: datetime) -> tuple[JobFilter, dict[str, str]]:
    """A JobFilter from status, kind, tenant, q, since and until; BadInput lists every bad one.

    Also returns the fields as given (comma-joined), for links, audit entries and output.
    """
    problems: list[FieldProblem] = []
    raw: dict[str, str] = {}
    got: dict[str, Any] = {}
    for name in FIELDS:
        try:
            given, got[name] = _field(params, name, now)
        except BadInput as exc:
            problems += exc.problems
            continue
        if given:
            raw[name] = ",".join(given)
    since, until = got.get("since"), got.get("until")
    if since is not None and until is not None and since >= until:
        problems.append(FieldProblem("until", "range", "until must be after since"))
    if problems:
        raise BadInput(problems)
    return (
        JobFilter(got["status"] or (), got["kind"] or (), got["tenant"], got["q"], since, until),
        raw,
    )


def encode_cursor(cursor: Cursor | None) -> str | None:
    """An opaque text form of a cursor."""
    if cursor is None:
        return None
    raw = f"{cursor[0].isoformat()}|{cursor[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor of `encode_cursor`'s text; BadInput if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, _, job_id = raw.partition("|")
        when = datetime.fromisoformat(at)
        # A list's cursors hold naive UTC: an offset would be compared as another time (an
        # empty page on SQLite, which compares the text).
        if not job_id or len(job_id) > 36 or when.tzinfo is not None:
            raise ValueError(raw)
        return when, job_id
    except ValueError:
        raise _bad("cursor", "cursor", "not a cursor a job list gave") from None


def parse_query(params: Mapping[str, Any], now: datetime, default_limit: int = 50) -> Query:
    """parse_filter plus limit (1-500) and cursor."""
    problems: list[FieldProblem] = []
    try:
        f, raw = parse_filter(params, now)
    except BadInput as exc:
        problems += exc.problems
        f, raw = JobFilter(), {}
    limit = default_limit
    text = params.get("limit")
    if text not in (None, ""):
        number = whole_number(text, 6) if isinstance(text, str) else None
        if number is None or not 1 <= number <= MAX_LIMIT:
            problems.append(
                FieldProblem("limit", "range", f"limit must be a whole number 1-{MAX_LIMIT}")
            )
        else:
            limit = number
    cursor = None
    ctext = params.get("cursor")
    if ctext not in (None, ""):
        try:
            if not isinstance(ctext, str):
                raise _bad("cursor", "type", "cursor must be a string")
            cursor = decode_cursor(ctext)
        except BadInput as exc:
            problems += exc.problems
    if problems:
        raise BadInput(problems)
    return Query(f, limit, cursor, raw)


def require_filter(raw: Mapping[str, Any]) -> None:
    """BadInput for a filter with no field: an action on every job of every tenant is never
    asked for by an empty form."""
    if not any(raw.get(name) for name in FIELDS):
        message = "a filter needs at least one field (status, kind, ...)"
        raise BadInput([FieldProblem("filter", "empty", message)])
