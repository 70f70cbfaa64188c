"""PostgreSQL plans for tables that start empty and grow fast."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

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
    """(rows read by sequential scans of `jobs` and entries read from its indexes, rows
    updated in it), as flushed so far."""
    url = server.services.db.engine.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        row = conn.execute(
            "SELECT t.seq_tup_read + (SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i"
            " WHERE i.relid = t.relid), t.n_tup_upd FROM pg_stat_user_tables t"
            " WHERE t.relname = 'jobs'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _run_one(server: Server) -> None:
    """Enqueue one job and wait for the worker to finish it (looked up by its key only)."""
    [job_id] = enqueue_many(server, "testkit.write", 1, {})
    wait_for(lambda: job_of(server.services, job_id).status == Status.SUCCEEDED, 30)


def test_jobs_run_after_the_table_grew_do_not_scan_it(server: Server) -> None:
    """Regression: a plan cached while `jobs` held a few rows (a sequential scan, or with
    those off a whole index read for a join) scanned the whole table on every later claim
    and completion."""
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
    assert read - read_before < grown, f"{read - read_before} rows or index entries read"


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def test_the_claims_one_plan_finds_its_rows_by_their_keys(server: Server) -> None:
    """Regression: the claim's generic plan (made once per connection, `CLAIM_PLAN`) joined
    its picks to `jobs` and, made behind a large analyzed backlog, read the whole primary key
    for them. Each kind's range of `ix_jobs_claim` is read in order, and the rows by key."""
    jobs = server.services.jobs
    with server.services.db.write() as s:  # the backlog the plan is made behind, analyzed
        jobs.enqueue_many(s, [NewJob("a", {}, "t") for _ in range(20_000)])
        s.execute(text("ANALYZE jobs"))
    claim = jobs.sql.claim
    params = claim.bind(jobs.claim_params("probe", [(["a", "b"], 10), (["c"], 5)]))
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", claim.sql)))
    numbered = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", claim.sql)
    with server.services.db.statement(flush=False) as conn:  # the claim's own connections
        raw = conn.connection.driver_connection
        assert raw.execute("SHOW plan_cache_mode").fetchone() == ("force_generic_plan",)
        raw.execute(f"PREPARE probe_claim AS {numbered}")
        try:
            values = sql.SQL(", ").join(sql.Literal(params[n]) for n in names)
            explain = sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE probe_claim({})").format(values)
            [[[plan]]] = raw.execute(explain).fetchall()
        finally:
            raw.execute("DEALLOCATE probe_claim")
    nodes = _plan_nodes(plan["Plan"])
    scans = [n for n in nodes if n.get("Relation Name") == "jobs" and "Scan" in n["Node Type"]]
    assert len(scans) == 3, scans  # each pick's range, and the UPDATE's rows
    assert all(n["Node Type"] == "Index Scan" and n.get("Index Cond") for n in scans), scans
    assert sorted(n["Index Name"] for n in scans) == ["ix_jobs_claim", "ix_jobs_claim", "pk_jobs"]
