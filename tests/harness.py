"""Test harness: a real database, a real uvicorn server, real worker processes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.util import await_

from writegate.app import create_app
from writegate.core.db.group_commit import GroupCommit
from writegate.core.maintenance import VACUUM_SETTINGS
from writegate.core.services import Services
from writegate.settings import Settings
from writegate.startup import migration_dirs

PG_ADMIN_URL = os.environ.get(
    "WRITEGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

#: settings that make leases, retries and polling fast enough for tests
FAST = {
    "worker_concurrency": 4,
    "worker_poll_interval": 0.2,
    "job_lease_seconds": 2.0,
    "reaper_interval": 0.3,
    "job_backoff_base": 0.05,
    "job_backoff_max": 0.3,
    "job_max_attempts": 5,
    # PostgreSQL has no data directory for BokaMera's generated key file: give every server one key
    "bokamera_secret_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
}


def backend() -> str:
    """'sqlite' or 'postgresql', from WRITEGATE_TEST_DB."""
    name = os.environ.get("WRITEGATE_TEST_DB", "sqlite").lower()
    if name in ("pg", "postgres"):
        name = "postgresql"
    if name not in ("sqlite", "postgresql"):
        raise RuntimeError(f"WRITEGATE_TEST_DB must be sqlite or postgresql, not {name!r}")
    return name


@contextmanager
def fresh_database(tmp_dir: str) -> Iterator[str]:
    """A brand-new empty database URL, removed afterwards. PostgreSQL must be reachable."""
    if backend() == "sqlite":
        yield f"sqlite:///{tmp_dir}/writegate-{uuid.uuid4().hex[:8]}.db"
        return
    import psycopg

    name = f"writegate_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # a missing PostgreSQL is a failure, never a skip
        raise RuntimeError(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}") from exc
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def unmigrated(tmp_dir: str) -> Iterator[tuple[Services, list[Path]]]:
    """Services on a brand-new database no migration has touched, and every migration
    directory (a test upgrades it step by step with `core.migrations.upgrade`)."""
    with fresh_database(tmp_dir) as url:
        svc = Services.build(Settings(database_url=url, modules=[]))
        try:
            yield svc, migration_dirs(svc.settings)
        finally:
            svc.close()


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running writegate: URL, its in-process services and settings."""

    url: str
    services: Services
    settings: Settings
    _uvicorn: Any = None
    _thread: threading.Thread | None = None
    env: dict[str, str] = field(default_factory=dict)
    app: Any = None

    def run_maintenance(self) -> dict[str, int | None]:
        """Run every housekeeping task of the server once, now."""
        from writegate.startup import maintenance

        return maintenance(self.services, self.app.state.job_sides).run_once()

    def client(self, **kw: Any) -> httpx.Client:
        """An HTTP client bound to this server."""
        return httpx.Client(base_url=self.url, timeout=30, **kw)

    def stop(self) -> None:
        """Shut the server (and its embedded worker) down."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(15)


def start_server(db_url: str, **overrides: Any) -> Server:
    """Start writegate in a thread of this process on a free port."""
    port = free_port()
    values = {**FAST, "database_url": db_url, "port": port, **overrides}
    settings = Settings(**values)
    services = Services.build(settings)
    app = create_app(settings, services)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn-test")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    env = {
        f"WRITEGATE_{k.upper()}": json.dumps(v) if isinstance(v, list | dict | bool) else str(v)
        for k, v in values.items()
        if k != "port"
    }
    return Server(f"http://127.0.0.1:{port}", services, settings, server, thread, env, app)


def spawn(
    args: list[str], env: dict[str, str], log: str | None = None, **kw: Any
) -> subprocess.Popen[bytes]:
    """Start `writegate ARGS` as a separate OS process; its output goes to `log` if given."""
    full_env = {**os.environ, **env}
    with open(log or os.devnull, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from writegate.cli import main; main()", *args],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            **kw,
        )


def stop_processes(procs: list[subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    """SIGTERM every live process, then SIGKILL whichever has not exited within `grace`."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; return its value or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def uid(prefix: str = "") -> str:
    """A short unique id for test isolation inside a shared database."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def vacuum_settings(server: Server) -> dict[str, str]:
    """The database server's own answer to SHOW for each setting the vacuum check reads
    (none on SQLite)."""
    if not server.services.db.is_postgres:
        return {}
    with server.services.db.read() as s:
        return {name: str(s.scalar(text(f"SHOW {name}"))) for name in VACUUM_SETTINGS}


def hold_group_commit(group: GroupCommit) -> tuple[threading.Event, Future[str]]:
    """Hold the group commit's one writer inside a transaction until the event is set.

    Attached to a server's event loop (PostgreSQL), the held batch is that loop's: it waits
    in its greenlet, the loop serving requests meanwhile, whose writes queue behind it.
    """
    # One batch at a time (PostgreSQL runs two): all later writes queue behind the held one.
    group.max_in_flight = 1
    entered, release = threading.Event(), threading.Event()
    loop = group.attached()

    def hold(_session: Any) -> str:
        entered.set()
        if loop is None:
            release.wait(30)
        else:
            await_(asyncio.to_thread(release.wait, 30))
        return "held"

    if loop is None:
        held = group.submit(hold)
    else:
        held = asyncio.run_coroutine_threadsafe(group.run(hold), loop)
    assert entered.wait(30)
    return release, held
