"""`writegate serve`, `worker` and `migrate`: the long-running processes and the schema."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from writegate.commands.common import (
    USAGE,
    check_connects,
    check_module_settings,
    console,
    fail,
    load_settings,
    read_write_services,
    setup_logging,
    shown_url,
    version_dirs,
)

if TYPE_CHECKING:
    from writegate.core.migrations import SchemaState
    from writegate.settings import Settings


def _migrate_in_child(settings: Settings) -> None:
    """Upgrade a schema that is behind in a short-lived `writegate migrate` process.

    Alembic and the migration scripts then never load into this long-running process. Best
    effort: the caller's own migrate() still runs, finds the schema at head cheaply, and is
    the one that reports any error.
    """
    from writegate.core.db import Database
    from writegate.core.migrations import at_head

    try:
        db = Database(settings.database_url, pool_size=1)
        try:
            if at_head(db, version_dirs()):
                return
        finally:
            db.dispose()
    except Exception:
        return  # the in-process start-up reports it
    subprocess.run(
        [sys.executable, "-c", "from writegate.cli import main; main()", "migrate"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )


def _state(settings: Settings) -> SchemaState:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from writegate.core.db import normalize_url
    from writegate.core.migrations import schema_state

    engine = create_engine(normalize_url(settings.database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return schema_state(conn, version_dirs())
    finally:
        engine.dispose()


def prepare_schema(settings: Settings) -> bool:
    """Bring the schema to this release if allowed; whether the process may migrate too.

    A schema migrated by a newer release (a rolling upgrade) is left alone: an older process
    runs on it. Without auto_migrate, a missing or older schema is one line and exit 1.
    """
    from writegate.core.migrations import SchemaState

    check_connects(settings)
    state = _state(settings)
    if state is SchemaState.AHEAD:
        logging.getLogger("writegate.cli").warning(
            "the schema is newer than this release: not migrating it"
        )
        return False
    if settings.auto_migrate:
        _migrate_in_child(settings)
        return True
    if state in (SchemaState.MISSING, SchemaState.BEHIND):
        what = (
            "has no schema" if state is SchemaState.MISSING else "is not migrated to this release"
        )
        fail(
            f"the database {shown_url(settings.database_url)} {what} and "
            "WRITEGATE_AUTO_MIGRATE is false: run `writegate migrate` first"
        )
    return False


def worker_services(settings: Settings) -> Any:
    """A worker's services on a schema made ready by `prepare_schema`."""
    return read_write_services(settings, migrate=prepare_schema(settings))


LogFormat = Annotated[
    str | None, typer.Option(help="Log lines: json, console, or auto (console on a terminal).")
]


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.", min=0, max=65535)] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run jobs in this process.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Number of HTTP worker processes.", min=1)] = 1,
    log_format: LogFormat = None,
) -> None:
    """Run the HTTP API (with an embedded job worker unless --no-worker)."""
    from writegate.core.observability.multiproc import prepare

    prepare(workers)  # before prometheus-client loads, here or in a worker process
    settings = load_settings()
    if no_worker:
        os.environ["WRITEGATE_EMBEDDED_WORKER"] = "false"
    log_config = setup_logging(settings.log_level, log_format or settings.log_format)
    check_module_settings(settings)
    if not prepare_schema(settings):
        # The app's start-up then leaves the schema alone too (it reads the environment).
        os.environ["WRITEGATE_AUTO_MIGRATE"] = "false"
    import uvicorn

    uvicorn.run(
        "writegate.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        workers=workers,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=settings.access_log,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=10,
        ws="none",
    )


def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (1-256).", min=1, max=256)
    ] = None,
    log_format: LogFormat = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve GET /metrics and GET /healthz on this port.", min=0, max=65535),
    ] = None,
) -> None:
    """Run a standalone job worker (scale out by starting several)."""
    from writegate.core.observability import tracing
    from writegate.core.worker import Worker
    from writegate.startup import maintenance, tuned_garbage_collector

    settings = load_settings()
    setup_logging(settings.log_level, log_format or settings.log_format)
    check_module_settings(settings)
    services = worker_services(settings)
    tracing.setup_tracing(settings.otel)
    w = Worker(
        services.jobs,
        services.registry,
        concurrency=settings.worker_concurrency if concurrency is None else concurrency,
        poll_interval=settings.worker_poll_interval,
        reaper_interval=settings.reaper_interval,
        wakeup=services.wakeup,
    )

    def _stop(*_: Any) -> None:
        if w.stopping:  # a second signal: leave at once; leases hand the jobs over later
            typer.echo("second signal: exiting without waiting for running jobs", err=True)
            os._exit(1)
        w.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    probe = _worker_http(services, w, metrics_port)
    housekeeping = maintenance(services, services.extras["modules"])
    housekeeping.start()
    typer.echo(f"worker {w.worker_id} running {', '.join(services.registry.kinds())}")
    try:
        with tuned_garbage_collector(settings.gc_young_threshold):
            w.run_forever(grace=settings.shutdown_grace_seconds)
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
    host = services.settings.host
    try:
        probe = WorkerHTTP(host, port, registry(collector), lambda: w.state)
    except OSError as exc:
        fail(f"cannot serve /metrics on {host}:{port}: {exc.strerror or exc}", USAGE)
    probe.start()
    return probe


def migrate() -> None:
    """Create or upgrade the database schema."""
    from writegate.core.migrations import SchemaState
    from writegate.startup import migrate as do_migrate

    settings = load_settings()
    check_module_settings(settings)
    check_connects(settings)
    if _state(settings) is SchemaState.AHEAD:
        fail(
            f"the database {shown_url(settings.database_url)} has revisions this release "
            "does not know (migrated by a newer writegate): nothing to do"
        )
    services = read_write_services(settings, migrate=False)
    try:
        do_migrate(services)
    finally:
        services.close()
    console().print(f"schema up to date ({shown_url(settings.database_url)})")


def makemigration(
    branch: Annotated[str, typer.Option(help="'core' or a module name.")],
    message: Annotated[str, typer.Option("-m", "--message")],
) -> None:
    """Autogenerate a revision for one branch (developer tool)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from writegate.core.migrations import alembic_config
    from writegate.startup import migrate as do_migrate

    settings = load_settings()
    check_connects(settings)
    services = read_write_services(settings, migrate=False)
    dirs = version_dirs()
    root = Path(__file__).parent.parent
    target = (
        root / "migrations" / "versions"
        if branch == "core"
        else root / "modules" / branch / "migrations"
    )
    target.mkdir(parents=True, exist_ok=True)
    if target not in dirs:
        dirs.append(target)
    cfg = alembic_config(services.db, dirs)
    script = ScriptDirectory.from_config(cfg)
    has_branch = any(branch in (r.branch_labels or ()) for r in script.walk_revisions())
    do_migrate(services)
    with services.db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.revision(
            cfg,
            message=message,
            autogenerate=True,
            head=f"{branch}@head" if has_branch else "base",
            branch_label=None if has_branch else branch,
            version_path=str(target),
            depends_on=None if has_branch or branch == "core" else "core@head",
        )
