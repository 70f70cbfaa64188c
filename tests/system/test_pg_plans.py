"""PostgreSQL plans for tables that start empty and grow fast."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.harness import Server, backend, fresh_database, start_server, wait_for
from tests.system.conftest import enqueue_many, job_of
from writegate.core.jobs import NewJob, Status

pytestmark = pytest.mark.skipif(
    backend() != "postgresql", reason="PostgreSQL's plan cache; SQLite plans every statement"
)


@pytest.fixture
def server(tmp_path: Any) -> Iterator[Server]:
    """A server with the testkit jobs, on a database of its own (its jobs table empty).

    Its reaper waits a minute: its look for orphaned waiters reads every job with a
    `waiting_on` and may scan the table until PostgreSQL has the column's statistics.
    """
    with fresh_database(str(tmp_path)) as url:
        srv = start_server(url, modules=["tests.testkit"], reaper_interval=60.0)
        yield srv
        srv.stop()


def _jobs_table_stats(server: Server) -> tuple[int, int]:
    """(rows read by sequential scans of `jobs`, rows updated in it), as flushed so far."""
    url = server.services.db.engine.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        row = conn.execute(
            "SELECT seq_tup_read, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'jobs'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _run_one(server: Server) -> None:
    """Enqueue one job and wait for the worker to finish it (looked up by its key only)."""
    [job_id] = enqueue_many(server, "testkit.write", 1, {})
    wait_for(lambda: job_of(server.services, job_id).status == Status.SUCCEEDED, 30)


def test_jobs_run_after_the_table_grew_do_not_scan_it(server: Server) -> None:
    """Regression: a plan cached while `jobs` held a few rows (a sequential scan) scanned the
    whole table on every later claim and completion."""
    for _ in range(12):  # one at a time: each statement runs often enough to be prepared
        _run_one(server)
    grown = 20_000
    with server.services.db.write() as s:  # a kind no worker runs: the table just grows
        server.services.jobs.enqueue_many(s, [NewJob("test.filler", {}, "t") for _ in range(grown)])
    read_before, updated_before = _jobs_table_stats(server)
    for _ in range(10):
        _run_one(server)
    # A backend reports its counters some time after its transaction: wait for the 20 updates
    # (10 claims, 10 completions), and the rows those statements read come with them.
    read, _ = wait_for(
        lambda: (s := _jobs_table_stats(server))[1] - updated_before >= 20 and s, timeout=30
    )
    assert read - read_before < grown, f"{read - read_before} rows read by sequential scans"
