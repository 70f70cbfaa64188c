"""Claims take at most `limit` jobs, whatever plan the database picks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import MetaData, text

from tests.harness import uid
from tests.system.conftest import core_services
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
    kind = uid("core.claim.")
    with services.db.write() as s:
        for _ in range(40):
            services.jobs.enqueue(s, kind=kind, payload={}, tenant="claims")
    with services.db.write() as s:
        if services.db.is_postgres:
            for knob in ("hashagg", "hashjoin", "mergejoin", "material", "seqscan"):
                s.execute(text(f"SET LOCAL enable_{knob} = off"))
        got = services.jobs._claim_in(s, "claimer", [kind], 10, services.clock.now())
    assert len(got) == 10
    with services.db.read() as s:
        running = services.jobs.find(s, tenant="claims", kind=kind, status="running", limit=100)
    assert len(running) == 10
