"""PostgreSQL: committed job inserts wake LISTENers through the jobs table's trigger."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import MetaData, text

from tests.harness import uid
from tests.system.conftest import core_services
from writegate.core.jobs import NOTIFY_CHANNEL
from writegate.core.services import Services


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database (PostgreSQL only)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite wakes its worker in-process")
    with core_services(db_url, MetaData()) as svc:
        yield svc


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
