"""jobs.requeue_stalled: an attempt whose lease expired (worker lost or hung) is settled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from tests.harness import fresh_database, uid
from tests.system.conftest import core_services, job_of
from writegate.core.jobs import Status
from writegate.core.services import Services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Core services on a database of their own: requeue_stalled settles every expired lease."""
    with fresh_database(str(tmp_path)) as url, core_services(url, MetaData()) as svc:
        yield svc


def test_requeue_stalled_settles_expired_leases_and_leaves_live_ones(services: Services) -> None:
    kind = uid("core.stalled-")
    with services.db.write() as s:
        ids = [
            services.jobs.enqueue(s, kind=kind, payload={}, tenant="reaper", max_attempts=2).id
            for _ in range(2)
        ]
    lost, live = ids
    (claimed,) = services.jobs.claim("lost-worker", [kind], 1)
    assert claimed.id == lost
    services.clock.advance(timedelta(seconds=services.jobs.lease_seconds + 1))
    (other,) = services.jobs.claim("live-worker", [kind], 1)  # its lease starts now
    assert other.id == live
    assert services.jobs.requeue_stalled() == 1
    retried = job_of(services, lost)
    assert retried.status is Status.QUEUED  # attempts remain: back in the queue at once
    assert (retried.attempts, retried.lease_owner) == (1, None)
    assert retried.error.startswith("lease expired: worker lost (attempt 1, worker lost-worker)")
    assert job_of(services, live).status is Status.RUNNING
    # Lost again on its last attempt: failed for good.
    (again,) = services.jobs.claim("lost-worker", [kind], 1)
    assert again.attempts == 2
    services.clock.advance(timedelta(seconds=services.jobs.timeout_seconds + 1))
    assert services.jobs.requeue_stalled() == 2  # the live one's lease is gone by now too
    final = job_of(services, lost)
    assert final.status is Status.FAILED
    assert final.error.startswith("job timed out (attempt 2")
