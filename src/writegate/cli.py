"""The `writegate` command line."""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from writegate.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

app = typer.Typer(
    help="writegate: trustworthy write APIs on one durable job core.", no_args_is_help=True
)
principals_app = typer.Typer(help="Manage principals (API users).", no_args_is_help=True)
jobs_app = typer.Typer(help="Inspect and operate jobs.", no_args_is_help=True)
app.add_typer(principals_app, name="principals")
app.add_typer(jobs_app, name="jobs")


@functools.cache
def _console() -> Console:
    # rich is imported on first output: serve and worker processes print nothing with it.
    from rich.console import Console

    return Console()


def _logging(level: str, fmt: str | None = None) -> dict[str, Any]:
    from writegate.core.observability.logging import FORMATS, setup_logging

    fmt = fmt or Settings().log_format
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--log-format")
    return setup_logging(level, fmt)


LogFormat = Annotated[
    str | None, typer.Option(help="Log lines: json, console, or auto (console on a terminal).")
]


def _migrate_in_child(settings: Settings) -> None:
    """Upgrade a schema that is behind in a short-lived `writegate migrate` process.

    Alembic and the migration scripts then never load into this long-running process. Best
    effort: the caller's own migrate() still runs, finds the schema at head cheaply, and is
    the one that reports any error (as before).
    """
    from writegate.app import migration_dirs
    from writegate.core.db import Database
    from writegate.core.migrations import at_head

    try:
        db = Database(settings.database_url, pool_size=1)
        try:
            in_memory = db.is_sqlite and db.engine.url.database in (None, "", ":memory:")
            if in_memory or at_head(db, migration_dirs(settings)):
                return
        finally:
            db.dispose()
    except Exception:
        return  # e.g. a malformed URL: the in-process start-up reports it as before
    subprocess.run(
        [sys.executable, "-c", "from writegate.cli import main; main()", "migrate"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )


def _services(migrate: bool = True, child: bool = False) -> Any:
    from writegate.app import load_modules
    from writegate.app import migrate as do_migrate
    from writegate.core.services import Services

    settings = Settings()
    if migrate and child and settings.auto_migrate:
        _migrate_in_child(settings)
    services = Services.build(settings)
    modules = load_modules(services)
    services.extras["modules"] = modules
    if migrate and settings.auto_migrate:
        do_migrate(services)
    return services


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run jobs in this process.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Number of HTTP worker processes.")] = 1,
    log_format: LogFormat = None,
) -> None:
    """Run the HTTP API (with an embedded job worker unless --no-worker)."""
    import os

    from writegate.core.observability.multiproc import prepare

    prepare(workers)  # before prometheus-client loads, here or in a worker process
    import uvicorn

    settings = Settings()
    if no_worker:
        os.environ["WRITEGATE_EMBEDDED_WORKER"] = "false"
    log_config = _logging(settings.log_level, log_format)
    if settings.auto_migrate:
        _migrate_in_child(settings)
    uvicorn.run(
        "writegate.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        workers=workers,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once.")] = None,
    log_format: LogFormat = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve GET /metrics and GET /healthz on this port.")
    ] = None,
) -> None:
    """Run a standalone job worker (scale out by starting several)."""
    from writegate.core.observability import tracing
    from writegate.core.worker import Worker

    _logging(Settings().log_level, log_format)
    services = _services(child=True)
    settings = services.settings
    tracing.setup_tracing(settings.otel)
    w = Worker(
        services.jobs,
        services.registry,
        concurrency=concurrency or settings.worker_concurrency,
        poll_interval=settings.worker_poll_interval,
        reaper_interval=settings.reaper_interval,
        wakeup=services.wakeup,
    )

    def _stop(*_: Any) -> None:
        w._stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    from writegate.app import freeze_startup_objects, maintenance

    housekeeping = maintenance(services, services.extras["modules"])
    housekeeping.start()
    probe = _worker_http(services, w, metrics_port)
    freeze_startup_objects()
    typer.echo(f"worker {w.worker_id} running {', '.join(services.registry.kinds())}")
    try:
        w.run_forever()
    finally:
        housekeeping.stop()
        if probe is not None:
            probe.stop()


def _worker_http(services: Any, w: Any, port: int | None) -> Any:
    from writegate.core.observability.metrics import registry
    from writegate.core.observability.queue import QueueCollector
    from writegate.core.observability.workerhttp import WorkerHTTP

    port = port if port is not None else services.settings.metrics_port
    if port is None:
        return None
    collector = QueueCollector(services.db, services.clock, services.registry.kinds)
    probe = WorkerHTTP(services.settings.host, port, registry(collector), lambda: w.state)
    probe.start()
    return probe


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from writegate.app import load_modules
    from writegate.app import migrate as do_migrate
    from writegate.core.services import Services

    services = Services.build(Settings())
    load_modules(services)
    do_migrate(services)
    _console().print(f"schema up to date ({services.db.engine.url.render_as_string()})")


@app.command("makemigration", hidden=True)
def makemigration(
    branch: Annotated[str, typer.Option(help="'core' or a module name.")],
    message: Annotated[str, typer.Option("-m", "--message")],
) -> None:
    """Autogenerate a revision for one branch (developer tool)."""
    from alembic import command

    from writegate.app import load_modules, migration_dirs
    from writegate.app import migrate as do_migrate
    from writegate.core.migrations import alembic_config
    from writegate.core.services import Services

    services = Services.build(Settings())
    load_modules(services)
    dirs = migration_dirs(services.settings)
    root = Path(__file__).parent
    target = (
        root / "migrations" / "versions"
        if branch == "core"
        else root / "modules" / branch / "migrations"
    )
    target.mkdir(parents=True, exist_ok=True)
    if target not in dirs:
        dirs.append(target)
    heads: list[str] = []
    cfg = alembic_config(services.db, dirs)
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(cfg)
    has_branch = any(branch in (r.branch_labels or ()) for r in script.walk_revisions())
    if has_branch:
        do_migrate(services)
        heads = [f"{branch}@head"]
    else:
        do_migrate(services)
    with services.db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.revision(
            cfg,
            message=message,
            autogenerate=True,
            head=heads[0] if heads else "base",
            branch_label=None if has_branch else branch,
            version_path=str(target),
            depends_on=None if has_branch or branch == "core" else "core@head",
        )


# -- principals ---------------------------------------------------------------


def _parse_attrs(attrs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in attrs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--attr must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


@principals_app.command("create")
def principals_create(
    name: Annotated[str, typer.Option(help="Unique name (login id for password users).")],
    tenant: Annotated[str, typer.Option(help="Tenant the principal belongs to.")],
    roles: Annotated[str, typer.Option(help="Comma-separated roles.")] = "",
    password: Annotated[
        str | None, typer.Option(help="Password (stored as an argon2 hash).")
    ] = None,
    attr: Annotated[
        list[str] | None, typer.Option(help="Extra attribute KEY=VALUE (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a principal and print its API key (shown once)."""
    services = _services()
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    attrs = _parse_attrs(attr or [])
    from sqlalchemy.exc import IntegrityError

    try:
        with services.db.write() as s:
            principal, key = services.auth.create(
                s, name=name, tenant=tenant, roles=role_list, password=password, attrs=attrs
            )
    except IntegrityError:
        _console().print(f"[red]a principal named {name!r} already exists[/red]")
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "name": principal.name,
                    "tenant": principal.tenant,
                    "roles": sorted(principal.roles),
                    "attrs": principal.attrs,
                    "api_key": key,
                }
            )
            + "\n"
        )
        return
    _console().print(
        f"created principal [bold]{principal.name}[/bold] in tenant {principal.tenant}"
    )
    _console().print(f"API key (shown once): [bold]{key}[/bold]")


@principals_app.command("list")
def principals_list() -> None:
    """List principals (never their secrets)."""
    services = _services()
    from rich.table import Table

    table = Table("name", "tenant", "roles", "attrs", "key", "created", "revoked")
    with services.db.read() as s:
        for row in services.auth.find(s):
            table.add_row(
                row.name,
                row.tenant,
                ",".join(row.roles),
                json.dumps(row.attrs),
                f"{row.api_key_hint}…",
                str(row.created_at)[:19],
                str(row.revoked_at)[:19] if row.revoked_at else "",
            )
    _console().print(table)


@principals_app.command("revoke")
def principals_revoke(name: str) -> None:
    """Revoke a principal: its key and password stop working at once."""
    services = _services()
    with services.db.write() as s:
        ok = services.auth.revoke(s, name)
    if not ok:
        _console().print(f"[red]no active principal named {name!r}[/red]")
        raise typer.Exit(1)
    _console().print(f"revoked {name}")


# -- jobs ---------------------------------------------------------------------


def _job_table(jobs: list[Any]) -> Table:
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


@jobs_app.command("list")
def jobs_list(
    status: Annotated[
        str | None, typer.Option(help="queued|running|succeeded|failed|cancelled")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Job kind.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List jobs, newest first."""
    from writegate.core.jobs import Status

    if status is not None and status not in {s.value for s in Status}:
        raise typer.BadParameter(f"unknown status {status!r}", param_hint="--status")
    services = _services()
    with services.db.read() as s:
        jobs = services.jobs.find(s, status=status, kind=kind, limit=limit)
    _console().print(_job_table(jobs))


def _show(job: Any) -> None:
    from rich.table import Table

    table = Table("field", "value", show_header=False)
    for key, value in job.__dict__.items():
        if key == "created":
            continue
        shown = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
        table.add_row(key, shown)
    _console().print(table)


def _show_or_exit(job: Any, job_id: str) -> None:
    if job is None:
        _console().print(f"[red]no job {job_id}[/red]")
        raise typer.Exit(1)
    _show(job)


@jobs_app.command("show")
def jobs_show(job_id: str) -> None:
    """Show one job in full."""
    services = _services()
    with services.db.read() as s:
        _show_or_exit(services.jobs.get(s, job_id), job_id)


@jobs_app.command("retry")
def jobs_retry(job_id: str) -> None:
    """Queue a failed or cancelled job again."""
    _show_or_exit(_services().jobs.retry(job_id), job_id)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued or running job."""
    _show_or_exit(_services().jobs.cancel(job_id), job_id)


def _add_module_clis() -> None:
    import importlib

    settings = Settings()
    for name in settings.modules:
        try:
            mod = importlib.import_module(f"writegate.modules.{name}.cli")
        except ModuleNotFoundError:
            continue
        app.add_typer(mod.app, name=getattr(mod, "NAME", name.replace("_", "-")))
        for cmd_name, fn in getattr(mod, "TOP_LEVEL", {}).items():
            app.command(cmd_name)(fn)


def main() -> None:
    """Console-script entry point."""
    _add_module_clis()
    app()
