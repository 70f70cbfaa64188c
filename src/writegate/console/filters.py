"""Job filters and page cursors from query parameters or JSON, with one error per bad field."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from writegate.core.http import FieldProblem
from writegate.core.jobs import Status
from writegate.core.jobs.operator import Cursor, JobFilter

STATUSES = tuple(s.value for s in Status)
MAX_LIMIT = 500
_AGO = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class BadInput(Exception):
    """One or more fields of a request are invalid."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Query:
    """A parsed job list request: the filter (before tenant scoping), page size and cursor."""

    filter: JobFilter
    limit: int
    cursor: Cursor | None
    #: the filter as given, to build links and audit entries
    raw: dict[str, str]


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise BadInput([FieldProblem(name, "type", f"{name} must be a string")])
        out += [v.strip() for v in item.split(",") if v.strip()]
    return out


def _when(name: str, value: str, now: datetime) -> datetime:
    m = _AGO.match(value)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(
            [FieldProblem(name, "datetime", f"{name} must be ISO 8601 or an age like 15m, 2h, 7d")]
        ) from None
    if at.tzinfo is not None:
        at = (at - at.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return at


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
        if not job_id or len(job_id) > 36:
            raise ValueError(raw)
        return datetime.fromisoformat(at), job_id
    except ValueError:
        raise BadInput([FieldProblem("cursor", "cursor", "not a cursor this API gave")]) from None


def parse_filter(params: Mapping[str, Any], now: datetime) -> tuple[JobFilter, dict[str, str]]:
    """A JobFilter from status, kind, tenant, q, since and until; BadInput lists every bad one."""
    problems: list[FieldProblem] = []
    raw: dict[str, str] = {}
    statuses, kinds, tenant, text = [], [], None, None
    since = until = None
    try:
        statuses = _values(params, "status")
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            problems.append(
                FieldProblem("status", "enum", f"unknown status {bad[0]!r}: one of {STATUSES}")
            )
    except BadInput as exc:
        problems += exc.problems
    for name in ("kind", "tenant", "q", "since", "until"):
        try:
            values = _values(params, name) if name == "kind" else _values(params, name)[-1:]
        except BadInput as exc:
            problems += exc.problems
            continue
        if not values:
            continue
        if any(len(v) > 200 for v in values):
            problems.append(FieldProblem(name, "too_long", f"{name} is longer than 200"))
            continue
        raw[name] = ",".join(values)
        try:
            if name == "kind":
                kinds = values
            elif name == "tenant":
                tenant = values[0]
            elif name == "q":
                text = values[0]
            elif name == "since":
                since = _when(name, values[0], now)
            else:
                until = _when(name, values[0], now)
        except BadInput as exc:
            problems += exc.problems
    if since is not None and until is not None and since >= until:
        problems.append(FieldProblem("until", "range", "until must be after since"))
    if statuses:
        raw["status"] = ",".join(statuses)
    if problems:
        raise BadInput(problems)
    return JobFilter(tuple(statuses), tuple(kinds), tenant, text, since, until), raw


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
        if not (isinstance(text, str) and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
            problems.append(
                FieldProblem("limit", "range", f"limit must be a whole number 1-{MAX_LIMIT}")
            )
        else:
            limit = int(text)
    cursor = None
    ctext = params.get("cursor")
    if ctext not in (None, ""):
        try:
            if not isinstance(ctext, str):
                raise BadInput([FieldProblem("cursor", "type", "cursor must be a string")])
            cursor = decode_cursor(ctext)
        except BadInput as exc:
            problems += exc.problems
    if problems:
        raise BadInput(problems)
    return Query(f, limit, cursor, raw)
