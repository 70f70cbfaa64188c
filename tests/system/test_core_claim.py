"""Claims take at most `limit` jobs, whatever plan the database picks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import MetaData, event, text

from tests.harness import uid
from tests.system.conftest import core_services
from writegate.core.db import DriverStatement, driver_fetch
from writegate.core.db.engine import CLAIM_PLAN
from writegate.core.jobs import NewJob, operator
from writegate.core.services import Services


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database."""
    with core_services(db_url, MetaData()) as svc:
        yield svc


def test_regression_claim_limit_holds_under_a_nested_loop_plan(services: Services) -> None:
    """Pins a bug: `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`.

    PostgreSQL may run that sub-select once per outer row (a nested-loop semi join, chosen
    after the table was analyzed while empty), and each run locks and returns other rows:
    one claim of 10 took every queued job.
    """
    kind, other = uid("core.claim."), uid("core.claim.")
    with services.db.write() as s:
        for _ in range(40):
            services.jobs.enqueue(s, kind=kind, payload={}, tenant="claims")
            services.jobs.enqueue(s, kind=other, payload={}, tenant="claims")
    with services.db.write() as s:
        if services.db.is_postgres:
            for knob in ("hashagg", "hashjoin", "mergejoin", "material", "seqscan"):
                s.execute(text(f"SET LOCAL enable_{knob} = off"))
        params = services.jobs.claim_params("claimer", [([kind], 10), ([other], 5)])
        got = services.jobs.sql.claim.fetch(s.connection(), params)  # the claim's statement
    assert len(got) == 15
    with services.db.read() as s:
        running = services.jobs.find(s, tenant="claims", kind=kind, status="running", limit=100)
        running_other = services.jobs.find(
            s, tenant="claims", kind=other, status="running", limit=100
        )
    assert (len(running), len(running_other)) == (10, 5)


def test_one_claim_takes_each_group_of_kinds_up_to_its_own_limit(services: Services) -> None:
    """A worker's short and threaded kinds are claimed in one statement, each up to its room."""
    short, threaded = uid("core.claim."), uid("core.claim.")
    with services.db.write() as s:
        for _ in range(4):
            services.jobs.enqueue(s, kind=short, payload={}, tenant="claims")
            services.jobs.enqueue(s, kind=threaded, payload={}, tenant="claims")
    got = services.jobs.claim("claimer", [short], 3, also=([threaded], 2))
    assert sorted(j.kind for j in got) == sorted([short] * 3 + [threaded] * 2)
    # A group with no room takes nothing; the other still takes its own.
    got = services.jobs.claim("claimer", [short], 0, also=([threaded], 5))
    assert [j.kind for j in got] == [threaded] * 2
    assert services.jobs.claim("claimer", [], 5, also=([threaded], 0)) == []
    assert [j.kind for j in services.jobs.claim("claimer", [short], 5)] == [short]


def test_a_claim_on_its_own_commits_the_jobs_it_took(services: Services) -> None:
    """`claim` runs as one statement (autocommit on PostgreSQL): its take is committed."""
    kind = uid("core.claim.")
    with services.db.write() as s:
        for _ in range(3):
            services.jobs.enqueue(s, kind=kind, payload={}, tenant="claims")
    got = services.jobs.claim("claimer", [kind], 2)
    assert len(got) == 2
    assert all(j.status.value == "running" and j.lease_owner == "claimer" for j in got)
    assert all(j.attempts == 1 for j in got)
    # A second claimer sees them taken at once, and gets only the one left.
    rest = services.jobs.claim("other", [kind], 10)
    assert len(rest) == 1
    assert rest[0].id not in {j.id for j in got}
    with services.db.read() as s:
        running = services.jobs.find(s, tenant="claims", kind=kind, status="running", limit=10)
    assert {j.lease_owner for j in running} == {"claimer", "other"}
    assert len(running) == 3


@pytest.mark.parametrize("name", ["holders", "active_job", "ACTIVE_HOLDER"])
def test_regression_exclusive_key_lookups_use_the_partial_index(
    services: Services, name: str
) -> None:
    """With `status IN (?, ?)` bound, SQLite scanned every job: each accept batch grew slower."""
    # the accept path's statements, and the operators' (a retry's or a job page's key holder)
    statement = getattr(operator if name.isupper() else services.jobs.sql, name)
    explain = "EXPLAIN " if services.db.is_postgres else "EXPLAIN QUERY PLAN "

    def explained(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> Any:
        return explain + sql, params  # the statement exactly as it runs, values bound

    params = {"h_keys": ["k-1", "k-2"], "h_key": "k-1"}
    with services.db.write() as s:
        conn = s.connection()
        if services.db.is_postgres:
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table is scanned anyway
        if isinstance(statement, DriverStatement):  # run on the driver: its own SQL and values
            rows, _ = driver_fetch(conn, explain + statement.sql, statement.bind(params))
        else:
            event.listen(conn, "before_cursor_execute", explained, retval=True)
            try:
                rows = list(conn.execute(statement, params))
            finally:
                event.remove(conn, "before_cursor_execute", explained)
    plan = "\n".join(str(r[-1]) for r in rows)
    assert "uq_jobs_exclusive_active" in plan, plan


def _claim_work(services: Services, groups: list[tuple[list[str], int]]) -> int:
    """What one claim reads, rolled back: PostgreSQL's buffers (planned as the claim's own
    connections plan it), SQLite's VM instructions."""
    claim = services.jobs.sql.claim
    params = claim.bind(services.jobs.claim_params("probe", groups))
    with services.db.write() as s:
        conn = s.connection()
        if services.db.is_postgres:
            for setting in CLAIM_PLAN:
                conn.exec_driver_sql(f"SET LOCAL {setting}")
            sql = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + claim.sql
            [[[plan]]], _ = driver_fetch(conn, sql, params)
            buffers = plan["Plan"]
            work = int(buffers["Shared Hit Blocks"] + buffers["Shared Read Blocks"])
        else:
            raw: Any = conn.connection.driver_connection
            steps = [0]

            def count() -> int:
                steps[0] += 1
                return 0

            raw.set_progress_handler(count, 10)
            try:
                driver_fetch(conn, claim.sql, params)
            finally:
                raw.set_progress_handler(None, 0)
            work = steps[0]
        s.rollback()
    return work


def test_regression_a_claim_read_every_queued_job_of_the_other_kinds(
    services: Services,
) -> None:
    """Pins a bug: one scan of every due job, filtered by kind, read the whole queue.

    Each worker claims two groups of kinds (short and threaded) and one is mostly empty: under
    24,000 queued one-row jobs a claim took 3 ms on PostgreSQL, the drain's bottleneck.
    """
    idle, busy, mine = (uid("core.claim.") for _ in range(3))
    with services.db.write() as s:
        services.jobs.enqueue_many(s, [NewJob(busy, {}, "claims") for _ in range(50)])
    groups = [([idle], 10), ([mine], 5)]  # neither has a job queued
    before = _claim_work(services, groups)
    with services.db.write() as s:
        services.jobs.enqueue_many(s, [NewJob(busy, {}, "claims") for _ in range(3000)])
        services.jobs.enqueue_many(s, [NewJob(mine, {}, "claims") for _ in range(2)])
    after = _claim_work(services, [([idle], 10), ([uid("core.claim.")], 5)])
    assert after < before * 1.5 + 10, (before, after)
    # Jobs of its kinds queued behind the others' backlog are taken, oldest first.
    got = services.jobs.claim("w", [idle, busy], 3, also=([mine], 5))
    assert [j.kind for j in got] == [busy] * 3 + [mine] * 2
