"""`writegate jobs` options as the core's job criteria; a bad one is a usage line, exit 2.

The parsing is `core.jobs.criteria`'s, the console's own: this only turns its problems into
lines naming the option. Nothing here loads database code.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

import typer

from writegate.commands.common import USAGE
from writegate.core.jobs import criteria
from writegate.core.jobs.status import FINAL
from writegate.core.problems import BadInput, FieldProblem

if TYPE_CHECKING:
    from writegate.core.jobs.criteria import Cursor, JobFilter

STATUSES = criteria.STATUSES


def usage(exc: BadInput) -> NoReturn:
    """One line per bad option (as typer's usage errors, without the usage text), exit 2."""
    for p in exc.problems:
        sys.stderr.write(f"writegate: --{p.field}: {p.message}\n")
    raise typer.Exit(USAGE)


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
    given = {"status": status, "kind": kind, "tenant": tenant, "since": since, "until": until}
    try:
        return criteria.parse_filter({**given, "q": text}, now)
    except BadInput as exc:
        usage(exc)


def cursor(text: str) -> Cursor:
    """The cursor `jobs list --json` gave."""
    try:
        return criteria.decode_cursor(text)
    except BadInput as exc:
        usage(exc)


def parse_duration(option: str, text: str) -> timedelta:
    """A positive duration like 30m, 12h or 7d."""
    got = criteria.duration(text)
    if got is None or got <= timedelta(0):
        problem = f"{text!r} is not a duration like 30m, 12h or 7d (at most 6 digits)"
        usage(BadInput([FieldProblem(option, "duration", problem)]))
    try:
        datetime.now() - got  # only its range matters
    except OverflowError:
        problem = f"{text!r} reaches back before the year 1"
        usage(BadInput([FieldProblem(option, "range", problem)]))
    return got


def final_statuses(text: str) -> tuple[str, ...]:
    """Comma-separated final statuses (at least one)."""
    try:
        wanted = criteria.statuses(criteria.values({"status": text}, "status"), FINAL)
    except BadInput as exc:
        usage(exc)
    if not wanted:
        usage(
            BadInput(
                [FieldProblem("status", "missing", "give at least one of " + ", ".join(FINAL))]
            )
        )
    return wanted
