"""System-test fixtures: a server without an embedded worker, and worker processes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import MetaData, func, select

from tests.harness import FAST, Server, fresh_database, spawn, start_server, stop_processes
from tests.testkit import effects
from writegate.app import migrate
from writegate.core.jobs import JobRow, Status
from writegate.core.services import Services
from writegate.core.worker import JobSpec, Worker
from writegate.settings import Settings


@pytest.fixture
def bare_server(tmp_path: Any) -> Iterator[Server]:
    """A server on its own fresh database, jobs run only by separately spawned workers."""
    with fresh_database(str(tmp_path)) as url:
        srv = start_server(url, embedded_worker=False, modules=["jef_one", "tests.testkit"])
        yield srv
        srv.stop()


@pytest.fixture
def workers(bare_server: Server, tmp_path: Any) -> Iterator[Any]:
    """Start `writegate worker` processes against bare_server's database; killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(concurrency: int = 4, **env: str) -> subprocess.Popen[bytes]:
        p = spawn(
            ["worker", "--concurrency", str(concurrency)],
            {**bare_server.env, **env},
            log=str(tmp_path / f"worker-{len(procs)}.log"),
            cwd=os.getcwd(),
        )
        procs.append(p)
        return p

    yield start
    stop_processes(procs)


def enqueue_many(server: Server, kind: str, n: int, payload: dict[str, Any]) -> list[str]:
    """Enqueue n jobs in one committed transaction; return their ids."""
    ids = []
    with server.services.db.write() as s:
        for _ in range(n):
            ids.append(server.services.jobs.enqueue(s, kind=kind, payload=payload, tenant="t").id)
    return ids


def status_counts(server: Server) -> dict[str, int]:
    """Jobs per status in the server's database."""
    with server.services.db.read() as s:
        rows = s.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all()
    return dict(rows)


def effect_counts(server: Server) -> dict[str, int]:
    """Effect rows per job id."""
    with server.services.db.read() as s:
        rows = s.execute(select(effects.c.job_id, func.count()).group_by(effects.c.job_id)).all()
    return dict(rows)


def all_done(server: Server, n: int) -> bool:
    """True once n jobs succeeded."""
    return status_counts(server).get(Status.SUCCEEDED.value, 0) == n


@contextmanager
def core_services(db_url: str, scratch: MetaData) -> Iterator[Services]:
    """Core services on the session database without API modules, plus scratch tables."""
    svc = Services.build(Settings(**{**FAST, "database_url": db_url, "modules": []}))
    migrate(svc)
    scratch.create_all(svc.db.write_engine, checkfirst=True)
    try:
        yield svc
    finally:
        # Leave no table behind that the models-vs-migrations check would see.
        scratch.drop_all(svc.db.write_engine)
        svc.close()


def start_worker(services: Services, specs: list[JobSpec], **kw: Any) -> Worker:
    """Register job kinds and start an in-process worker for them (stop it when done)."""
    for spec in specs:
        if spec.kind not in services.registry.kinds():
            services.registry.add(spec)
    kw.setdefault("poll_interval", 0.2)
    kw.setdefault("reaper_interval", 0.3)
    worker = Worker(services.jobs, services.registry, wakeup=services.wakeup, **kw)
    worker.start()
    return worker


def job_of(services: Services, job_id: str) -> Any:
    """The job as stored now."""
    with services.db.read() as s:
        return services.jobs.get(s, job_id)
