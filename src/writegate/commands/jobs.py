"""`writegate jobs ...`: inspect, retry, cancel and prune jobs (whole ids, --json, filters).

Every command checks the database, then works on that one plain connection with SQLAlchemy
Core (`core/jobs/operator.py`, `detail.py`, `actions.py`, `prune.py`): no ORM, no services.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from writegate.commands import jobs_query as q
from writegate.commands.common import USAGE, columns, fail, load_settings, migrated_connection
from writegate.core.clock import Clock
from writegate.core.jobs.listing import iso, summary
from writegate.core.jobs.status import FINAL

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from writegate.core.jobs.operator import Outcome

app = typer.Typer(
    help="Inspect and operate jobs.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

Status = Annotated[str | None, typer.Option(help="|".join(q.STATUSES) + " (comma-separated).")]
Kind = Annotated[str | None, typer.Option(help="Job kind (comma-separated).")]
Tenant = Annotated[str | None, typer.Option(help="Only this tenant's jobs.")]
Since = Annotated[
    str | None, typer.Option(help="Created at or after: ISO 8601, or an age like 15m, 2h, 7d.")
]
Until = Annotated[str | None, typer.Option(help="Created before: ISO 8601, or an age.")]
Text = Annotated[str | None, typer.Option("--q", help="Id prefix, or part of the exclusive key.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Ids = Annotated[list[str] | None, typer.Argument(help="Job ids (or use filter options).")]
Yes = Annotated[bool, typer.Option("--yes", help="Act on a filter without asking.")]


def _say(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def _actor() -> str:
    """Who the audit log names: the OS user, as `cli:<user>`."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _table(jobs: list[dict[str, Any]]) -> None:
    """Whole ids, whatever the terminal."""
    header = ("id", "kind", "tenant", "status", "attempts", "created", "error")
    rows = [
        (
            j["id"],
            j["kind"],
            j["tenant"],
            j["status"],
            f"{j['attempts']}/{j['max_attempts']}",
            j["created_at"] or "",
            (j["error"] or "")[:80],
        )
        for j in jobs
    ]
    columns(header, rows)


@app.command("list")
def jobs_list(
    status: Status = None,
    kind: Kind = None,
    tenant: Tenant = None,
    since: Since = None,
    until: Until = None,
    text: Text = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    as_json: AsJson = False,
) -> None:
    """List jobs newest first, whole ids; --json adds next_cursor for the next page."""
    # Bad options are usage errors before any database code is loaded; the page is one Core
    # query on a plain connection (no ORM, no services: `writegate jobs list` starts fast).
    f, raw = q.job_filter(
        Clock().now(), status=status, kind=kind, tenant=tenant, since=since, until=until, text=text
    )
    after = q.cursor(cursor) if cursor else None
    settings = load_settings()
    from writegate.core.jobs import operator
    from writegate.core.jobs.criteria import encode_cursor

    with migrated_connection(settings) as conn:
        rows, nxt = operator.page(conn, f, limit=limit, after=after)
        jobs = [summary(r) for r in rows]
    more = encode_cursor(nxt)
    if as_json:
        _say(json.dumps({"jobs": jobs, "next_cursor": more, "filter": raw}))
        return
    _table(jobs)
    if more:
        _say(f"more: --cursor {more}")


def _detail(conn: Connection, job_id: str) -> dict[str, Any] | None:
    from writegate.core.jobs.detail import look_up

    with conn.begin():
        found = look_up(conn, job_id, tenant=None)
    if found is None:
        return None
    _, fields, entries = found
    return {
        **fields,
        "audit": [
            {"at": iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail or {}}
            for e in entries
        ],
    }


@app.command("show")
def jobs_show(job_id: str, as_json: AsJson = False) -> None:
    """Show one job in full (secrets in its payload masked) and its audit entries."""
    with migrated_connection(load_settings()) as conn:
        detail = _detail(conn, job_id)
    if detail is None:
        fail(f"no job {job_id}")
    if as_json:
        _say(json.dumps(detail))
        return
    for key, value in detail.items():
        if key != "audit":
            shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
            _say(f"{key}: {shown}")
    for entry in detail["audit"]:
        _say(f"audit: {entry['at']} {entry['actor']} {entry['action']}")


def _apply(
    conn: Connection, action: str, ids: list[str], options: dict[str, str | None] | None
) -> tuple[list[Outcome], int]:
    """Retry or cancel by ids or by filter, in one write transaction with its audit entry."""
    from writegate.core.jobs.actions import Actor, act

    now = Clock().now()
    f = raw = None
    if options is not None:
        f, raw = q.job_filter(now, **options)
    with conn.begin():
        return act(
            conn,
            action,
            Actor(_actor(), None),
            now,
            ids=ids,
            job_filter=f,
            raw_filter=raw,
        )


def _act(action: str, ids: list[str], options: dict[str, str | None], yes: bool, js: bool) -> None:
    """Check the ids or filter, ask before acting on a filter, act, and report each job."""
    given = {k: v for k, v in options.items() if v}
    if ids and given:
        fail("give job ids or filter options (--status, --kind, ...), not both", USAGE)
    if not ids and not given:
        fail("give job ids, or filter options (--status, --kind, ...)", USAGE)
    if given:
        _, raw = q.job_filter(Clock().now(), **options)  # bad options: exit 2, nothing asked
        shown = " ".join(f"--{k} {v}" for k, v in raw.items())
        if not yes and not typer.confirm(f"{action} every job matching {shown}?", default=False):
            _say("nothing done", err=True)
            raise typer.Exit(1)
    with migrated_connection(load_settings(), write=True) as conn:
        outcomes, audit_id = _apply(conn, action, ids, options if given else None)
    from writegate.core.jobs.actions import describe, report

    if js:
        _say(json.dumps(report(action, outcomes, audit_id)))
    else:
        for o in outcomes:
            _say(describe(action, o), err=not o.ok)
        if not outcomes:
            _say("no job matches the filter")
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)


def _action_command(action: str, doc: str) -> None:
    """`jobs retry` and `jobs cancel`: the same options, by ids or by filter."""

    def command(
        ids: Ids = None,
        status: Status = None,
        kind: Kind = None,
        tenant: Tenant = None,
        since: Since = None,
        until: Until = None,
        text: Text = None,
        yes: Yes = False,
        as_json: AsJson = False,
    ) -> None:
        options = {"status": status, "kind": kind, "tenant": tenant, "since": since}
        _act(action, ids or [], {**options, "until": until, "text": text}, yes, as_json)

    command.__doc__ = doc
    app.command(action)(command)


_action_command(
    "retry", "Queue failed or cancelled jobs again; exits 1 if any was refused (and says why)."
)
_action_command(
    "cancel", "Cancel queued or running jobs; exits 1 if any was refused (and says why)."
)


@app.command("prune")
def jobs_prune(
    older_than: Annotated[str, typer.Option(help="Final for longer than this: 30m, 12h, 7d, 2w.")],
    status: Annotated[
        str, typer.Option(help="Final statuses to delete (comma-separated).")
    ] = ",".join(FINAL),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing.")] = False,
    as_json: AsJson = False,
) -> None:
    """Delete final jobs that finished more than --older-than ago (queued/running never)."""
    age = q.parse_duration("older-than", older_than)
    wanted = q.final_statuses(status)
    settings = load_settings()
    from writegate.core import audit_log
    from writegate.core.jobs.prune import prune

    with migrated_connection(settings, write=not dry_run) as conn:
        n = prune(conn, Clock().now() - age, statuses=wanted, dry_run=dry_run)
        if not dry_run:
            with conn.begin():
                audit_log.record(
                    conn,
                    at=Clock().now(),
                    actor=_actor(),
                    tenant=audit_log.ALL_TENANTS,
                    action="prune",
                    job_ids=[],
                    detail={"older_than": older_than, "statuses": list(wanted), "deleted": n},
                )
    if as_json:
        _say(json.dumps({"dry_run": dry_run, "jobs": n, "older_than": older_than}))
    else:
        verb = "would delete" if dry_run else "deleted"
        _say(f"{verb} {n} {'/'.join(wanted)} job(s) finished more than {older_than} ago")
