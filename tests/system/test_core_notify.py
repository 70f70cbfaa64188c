"""PostgreSQL: committed job inserts wake LISTENers through the jobs table's trigger."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import MetaData, text

from tests.harness import fresh_database, uid, wait_for
from tests.system.conftest import core_services, job_of, start_worker
from writegate.core.jobs import NOTIFY_CHANNEL, Status
from writegate.core.services import Services
from writegate.core.worker import JobSpec
from writegate.core.worker.listener import Listener


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database (PostgreSQL only)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite wakes its worker in-process")
    with core_services(db_url, MetaData()) as svc:
        yield svc


@pytest.fixture
def alone(db_url: str, tmp_path: Path) -> Iterator[Services]:
    """Core services on a PostgreSQL database of their own: no other process NOTIFYs on it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite wakes its worker in-process")
    with fresh_database(str(tmp_path)) as url, core_services(url, MetaData()) as svc:
        yield svc


def _url(services: Services) -> str:
    return services.db.engine.url.set(drivername="postgresql").render_as_string(False)


_RAW_INSERT = (
    "INSERT INTO jobs (id, kind, tenant, payload, status, attempts, max_attempts,"
    " run_after, created_at, updated_at) VALUES (:id, :kind, 't', 'null',"
    " 'queued', 0, 1, now(), now(), now())"
)


def _notifies(listener: psycopg.Connection, timeout: float) -> int:
    return sum(1 for _ in listener.notifies(timeout=timeout, stop_after=1))


def test_insert_notifies_once_at_commit_and_a_rollback_not_at_all(services: Services) -> None:
    url = services.db.engine.url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        tenant = uid("notify-")
        s = services.db._write()
        with s.begin() as tx:
            services.jobs.enqueue(s, kind="core.test", payload={}, tenant=tenant)
            tx.rollback()
        s.close()
        assert _notifies(listener, 0.5) == 0
        with services.db.write() as s:
            for _ in range(5):
                services.jobs.enqueue(s, kind="core.test", payload={}, tenant=tenant)
        assert _notifies(listener, 10) == 1
        # `defer` commits by itself (autocommit, no transaction block): its INSERT notifies too.
        services.jobs.defer(kind="core.test", payload={}, tenant=tenant)
        assert _notifies(listener, 10) == 1
        # Any INSERT wakes workers, not only JobManager's (an operator's bulk load, say).
        with services.db.write() as s:
            s.execute(
                text(
                    "INSERT INTO jobs (id, kind, tenant, payload, status, attempts, max_attempts,"
                    " run_after, created_at, updated_at) VALUES (:id, 'core.test', :t, 'null',"
                    " 'queued', 0, 1, now(), now(), now())"
                ),
                {"id": uid("raw-"), "t": tenant},
            )
        assert _notifies(listener, 10) == 1


def test_the_database_knows_the_server_processes_of_its_connections(services: Services) -> None:
    with services.db.write() as s:
        pid = s.scalar(text("SELECT pg_backend_pid()"))
    assert pid in services.db.backends
    services.db.engine.dispose()  # closes the pooled connections
    assert pid not in services.db.backends


def test_the_listener_tells_a_notify_of_this_process_from_another_ones(services: Services) -> None:
    listener = Listener(_url(services), "test listen")
    try:
        fd, new = listener.ensure()
        assert fd is not None
        assert new

        def arrived() -> None:
            assert select.select([fd], [], [], 10)[0], "no NOTIFY arrived"

        with services.db.write() as s:
            s.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
        arrived()
        assert listener.drain(services.db.backends) is False
        with psycopg.connect(_url(services), autocommit=True) as other:
            other.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        arrived()
        assert listener.drain(services.db.backends) is True
    finally:
        listener.close()


def test_regression_one_commit_woke_the_worker_twice(alone: Services) -> None:
    """Pins a waste: a commit of this process woke its worker in-process, then again with
    its own NOTIFY, and the second claim mostly found nothing (a third of all claims under
    load). A NOTIFY from this process's own connections no longer wakes it: a job written
    here without the in-process wake-up waits for the poll (a minute away), and the NOTIFY
    of a job written by another process's connection wakes it at once."""
    kind = uid("core.notify-")
    params: dict[str, Any] = {"kind": kind}

    def insert_from_another_process(job_id: str) -> None:
        with psycopg.connect(_url(alone), autocommit=True) as other:
            sql = _RAW_INSERT.replace(":id", "%(id)s").replace(":kind", "%(kind)s")
            other.execute(sql, {**params, "id": job_id})

    def succeeded(job_id: str) -> None:
        wait_for(lambda: job_of(alone, job_id).status is Status.SUCCEEDED, timeout=10)

    worker = start_worker(alone, [JobSpec(kind, lambda ctx: "ok")], poll_interval=60.0)
    try:
        first = uid("first-")
        insert_from_another_process(first)
        succeeded(first)  # the worker is up and listening
        time.sleep(0.5)  # and idle again, waiting on its LISTEN socket
        own, theirs = uid("own-"), uid("theirs-")
        with alone.db.write() as s:  # raw SQL: the NOTIFY alone, no in-process wake-up
            s.execute(text(_RAW_INSERT), {**params, "id": own})
        time.sleep(1.0)
        assert job_of(alone, own).status is Status.QUEUED
        insert_from_another_process(theirs)
        succeeded(theirs)
        succeeded(own)  # taken by the same claim
    finally:
        worker.stop()


def test_an_insert_whose_jobs_were_all_handed_over_notifies_no_one(alone: Services) -> None:
    """A job written running for this process's worker can be taken by no other worker:
    its INSERT wakes none of them; one that queued a job does."""
    short = uid("core.notify-short-")
    worker = start_worker(alone, [JobSpec(short, lambda ctx: "ok", short=True)])
    try:
        wait_for(lambda: worker.room(short) > 0, timeout=10)
        with psycopg.connect(_url(alone), autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            for _ in range(20):
                with alone.db.write() as s:
                    handed = alone.jobs.enqueue(s, kind=short, payload={}, tenant="t")
                if handed.status is Status.RUNNING:
                    break
                # Written while the dispatcher claimed (no room meanwhile): queued, and
                # notified. Let it run, forget its NOTIFY and write the next.
                wait_for(lambda j=handed: job_of(alone, j.id).status is Status.SUCCEEDED)
                wait_for(lambda: worker.room(short) > 0, timeout=10)
                _notifies(listener, 0.5)
            assert handed.status is Status.RUNNING
            assert _notifies(listener, 0.5) == 0
            with alone.db.write() as s:
                alone.jobs.enqueue(s, kind=short, payload={}, tenant="t")
                queued = alone.jobs.enqueue(s, kind=uid("core.other-"), payload={}, tenant="t")
            assert queued.status is Status.QUEUED
            assert _notifies(listener, 10) == 1
        wait_for(lambda: job_of(alone, handed.id).status is Status.SUCCEEDED, timeout=10)
    finally:
        worker.stop()
