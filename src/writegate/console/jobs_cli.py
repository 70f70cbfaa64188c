"""`writegate jobs list|show|retry|cancel`: the console's job queries and actions on the CLI."""

from __future__ import annotations

import dataclasses
import getpass
import json
import sys
from typing import Annotated, Any

import typer

jobs_app = typer.Typer(help="Inspect and operate jobs.", no_args_is_help=True)

Status = Annotated[
    str | None, typer.Option(help="queued|running|succeeded|failed|cancelled (comma-separated).")
]
Kind = Annotated[str | None, typer.Option(help="Job kind (comma-separated).")]
Tenant = Annotated[str | None, typer.Option(help="Only this tenant's jobs.")]
Since = Annotated[
    str | None, typer.Option(help="Created at or after: ISO 8601, or an age like 15m, 2h, 7d.")
]
Until = Annotated[str | None, typer.Option(help="Created before: ISO 8601, or an age.")]
Text = Annotated[str | None, typer.Option("--q", help="Id prefix, or part of the exclusive key.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _services(modules: bool = False) -> Any:
    from writegate.app import load_modules, migrate
    from writegate.core.services import Services
    from writegate.settings import Settings

    settings = Settings()
    services = Services.build(settings)
    # Only `show` needs the modules (their links from a job to its records).
    services.extras["modules"] = load_modules(services) if modules else []
    if settings.auto_migrate:
        migrate(services)
    return services


def _operator() -> Any:
    """The CLI acts as a superadmin of every tenant; the audit log names the OS user."""
    from writegate.console.access import GLOBAL_TENANT, Operator
    from writegate.core.auth import Principal

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    name = f"cli:{user}"
    return Operator(Principal(0, name, GLOBAL_TENANT, frozenset({"superadmin"})), None)


def _params(**given: str | None) -> dict[str, str]:
    return {k: v for k, v in given.items() if v is not None and v != ""}


def _filter(params: dict[str, str]) -> Any:
    from writegate.console.filters import BadInput, parse_filter
    from writegate.core.clock import Clock

    try:
        return parse_filter(params, Clock().now())
    except BadInput as exc:
        problem = exc.problems[0]
        raise typer.BadParameter(problem.message, param_hint=f"--{problem.field}") from None


def _say(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


@jobs_app.command("list")
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
    from writegate.console import ops
    from writegate.console.filters import BadInput, decode_cursor, parse_query

    params = _params(status=status, kind=kind, tenant=tenant, since=since, until=until, q=text)
    _filter(params)  # bad values: one line naming the option, exit 2
    try:
        after = decode_cursor(cursor) if cursor else None
    except BadInput:
        raise typer.BadParameter(
            "not a cursor `jobs list --json` gave", param_hint="--cursor"
        ) from None
    services = _services()
    query = parse_query({**params, "limit": str(limit)}, services.clock.now())
    query = dataclasses.replace(query, cursor=after)
    page = ops.list_jobs(services, _operator(), query)
    if as_json:
        _say(json.dumps(page))
        return
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
        for j in page["jobs"]
    ]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for row in [header, *rows]:
        _say("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if page["next_cursor"]:
        _say(f"more: --cursor {page['next_cursor']}")


@jobs_app.command("show")
def jobs_show(job_id: str, as_json: AsJson = False) -> None:
    """Show one job in full (secrets in its payload masked)."""
    from writegate.console import ops
    from writegate.console.access import Denied

    services = _services(modules=True)
    try:
        detail = ops.job_detail(services, services.extras["modules"], _operator(), job_id)
    except Denied:
        _say(f"no job {job_id}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        _say(json.dumps(detail))
        return
    for key, value in detail.items():
        if key in ("audit", "progress"):
            continue
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        _say(f"{key}: {shown}")
    for entry in detail["audit"]:
        _say(f"audit: {entry['at']} {entry['actor']} {entry['action']}")


def _act(action: str, ids: list[str], params: dict[str, str], yes: bool, as_json: bool) -> None:
    from writegate.console import ops

    if ids and params:
        raise typer.BadParameter("give job ids or filter options, not both")
    if not ids and not params:
        raise typer.BadParameter("give job ids, or filter options (--status, --kind, ...)")
    job_filter = raw = None
    if params:
        job_filter, raw = _filter(params)
        if not yes and not typer.confirm(f"{action} every job matching {raw}?", default=False):
            raise typer.Exit(1)
    services = _services()
    out = ops.act(services, _operator(), action, ids or None, job_filter, raw)
    if as_json:
        _say(json.dumps(out))
    else:
        for result in out["results"]:
            _say(result["message"], err=not result["ok"])
        if not out["results"]:
            _say(f"no job matches {raw}")
    if out["refused"]:
        raise typer.Exit(1)


Ids = Annotated[list[str] | None, typer.Argument(help="Job ids (or use filter options).")]
Yes = Annotated[bool, typer.Option("--yes", help="Act on a filter without asking.")]


@jobs_app.command("retry")
def jobs_retry(
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
    """Queue failed or cancelled jobs again; exits 1 if any was refused (and says why)."""
    params = _params(status=status, kind=kind, tenant=tenant, since=since, until=until, q=text)
    _act("retry", ids or [], params, yes, as_json)


@jobs_app.command("cancel")
def jobs_cancel(
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
    """Cancel queued or running jobs; exits 1 if any was refused (and says why)."""
    params = _params(status=status, kind=kind, tenant=tenant, since=since, until=until, q=text)
    _act("cancel", ids or [], params, yes, as_json)


def main() -> None:
    """Run `jobs_app` alone (tests; `writegate jobs` mounts it in the full CLI)."""
    jobs_app()
