"""`writegate jobs ...`: inspect and operate jobs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from writegate.commands.common import console, existing_services, load_settings

app = typer.Typer(
    help="Inspect and operate jobs.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def _job_table(jobs: list[Any]) -> Any:
    from rich.table import Table

    table = Table("id", "kind", "tenant", "status", "attempts", "created", "updated", "error")
    for j in jobs:
        table.add_row(
            j.id,
            j.kind,
            j.tenant,
            str(j.status),
            f"{j.attempts}/{j.max_attempts}",
            str(j.created_at)[:19],
            str(j.updated_at)[:19],
            (j.error or "")[:60],
        )
    return table


def _show(job: Any) -> None:
    from rich.table import Table

    table = Table("field", "value", show_header=False)
    for key, value in job.__dict__.items():
        if key == "created":
            continue
        shown = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
        table.add_row(key, shown)
    console().print(table)


def _show_or_exit(job: Any, job_id: str) -> None:
    if job is None:
        console().print(f"[red]no job {job_id}[/red]")
        raise typer.Exit(1)
    _show(job)


@app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="|".join(STATUSES))] = None,
    kind: Annotated[str | None, typer.Option(help="Job kind.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List jobs, newest first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"unknown status {status!r}", param_hint="--status")
    services = existing_services(load_settings())
    try:
        with services.db.read() as s:
            jobs = services.jobs.find(s, status=status, kind=kind, limit=limit)
    finally:
        services.close()
    console().print(_job_table(jobs))


@app.command("show")
def jobs_show(job_id: str) -> None:
    """Show one job in full."""
    services = existing_services(load_settings())
    try:
        with services.db.read() as s:
            job = services.jobs.get(s, job_id)
    finally:
        services.close()
    _show_or_exit(job, job_id)


@app.command("retry")
def jobs_retry(job_id: str) -> None:
    """Queue a failed or cancelled job again."""
    services = existing_services(load_settings())
    try:
        _show_or_exit(services.jobs.retry(job_id), job_id)
    finally:
        services.close()


@app.command("cancel")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued or running job."""
    services = existing_services(load_settings())
    try:
        _show_or_exit(services.jobs.cancel(job_id), job_id)
    finally:
        services.close()
