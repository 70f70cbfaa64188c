"""NewJob.after_id: a job is not claimed until the job it runs after is final."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData

from tests.harness import fresh_database, uid, wait_for
from tests.system.conftest import core_services, job_of, start_worker
from writegate.core.exceptions import ExclusiveJobExists, PermanentJobError
from writegate.core.jobs import Job, NewJob, Status, new_job_id
from writegate.core.jobs.table import JOBS
from writegate.core.services import Services
from writegate.core.worker import JobContext, JobSpec


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, without any API module."""
    with core_services(db_url, MetaData()) as svc:
        yield svc


def _enqueue(services: Services, *specs: NewJob) -> list[Job]:
    with services.db.write() as s:
        out = services.jobs.enqueue_many(s, list(specs))
    assert all(isinstance(j, Job) for j in out)
    return out  # type: ignore[return-value]


@pytest.fixture
def alone(tmp_path: Path) -> Iterator[Services]:
    """Core services on a database of their own: no other process's reaper sweeps it (the
    session's live server runs a worker on the shared one)."""
    with fresh_database(str(tmp_path)) as url, core_services(url, MetaData()) as svc:
        yield svc


def test_a_job_waits_until_the_job_it_runs_after_succeeded(services: Services) -> None:
    first_kind, then_kind = uid("core.first-"), uid("core.then-")
    release = threading.Event()
    order: list[str] = []

    def first(ctx: JobContext) -> Any:
        release.wait(30)
        order.append("first")
        return "first"

    def then(ctx: JobContext) -> Any:
        order.append("then")
        return "then"

    tenant = uid("t-")
    a = _enqueue(services, NewJob(first_kind, {}, tenant))[0]
    # `then` is queued with nothing in its way but the dependency; a short kind, claimed first.
    b = _enqueue(services, NewJob(then_kind, {}, tenant, after_id=a.id))[0]
    assert b.after_id == a.id
    worker = start_worker(
        services, [JobSpec(first_kind, first), JobSpec(then_kind, then, short=True)]
    )
    try:
        wait_for(lambda: job_of(services, a.id).status is Status.RUNNING, timeout=30)
        # Many claims go by (polls every 0.2 s) while its dependency runs: none takes it.
        threading.Event().wait(1.0)
        assert job_of(services, b.id).status is Status.QUEUED
        assert order == []
        release.set()
        wait_for(lambda: job_of(services, b.id).status is Status.SUCCEEDED, timeout=30)
    finally:
        release.set()
        worker.stop()
    assert order == ["first", "then"]
    # The order is the one the handlers ran in; timestamps are read a moment before each
    # statement, so a claim may be stamped a hair before the commit it waited for.
    done_b = job_of(services, b.id)
    assert (done_b.after_id, done_b.attempts) == (a.id, 1)


def test_a_job_waits_for_a_dependency_that_is_still_queued(services: Services) -> None:
    """A dependency of an unserved kind stays queued: the job after it is never claimed."""
    unserved, then_kind = uid("core.unserved-"), uid("core.then-")
    tenant = uid("t-")
    a = _enqueue(services, NewJob(unserved, {}, tenant))[0]
    b, free = _enqueue(
        services,
        NewJob(then_kind, {"n": 1}, tenant, after_id=a.id),
        NewJob(then_kind, {"n": 2}, tenant),
    )
    claimed = services.jobs.claim("claimer", [then_kind], 10)
    assert [j.id for j in claimed] == [free.id]  # only the free one
    assert job_of(services, b.id).status is Status.QUEUED
    services.jobs.cancel(a.id)  # cancelled is final too
    (released,) = services.jobs.claim("claimer", [then_kind], 10)
    assert released.id == b.id


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_a_dependency_that_fails_or_is_cancelled_releases_the_job_after_it(
    services: Services, ending: str
) -> None:
    """Final is final: the dependent job runs (and sees how its dependency ended)."""
    dep_kind, then_kind = uid("core.dep-"), uid("core.then-")
    seen: list[Status] = []

    def dep(ctx: JobContext) -> Any:
        raise PermanentJobError("no")

    def then(ctx: JobContext) -> Any:
        with ctx.manager.db.read() as s:
            found = ctx.manager.get(s, ctx.job.after_id or "")
        assert found is not None
        seen.append(found.status)
        return found.status.value

    tenant = uid("t-")
    a = _enqueue(services, NewJob(dep_kind, {}, tenant))[0]
    b = _enqueue(services, NewJob(then_kind, {}, tenant, after_id=a.id))[0]
    if ending == "cancelled":
        services.jobs.cancel(a.id)
    worker = start_worker(services, [JobSpec(dep_kind, dep), JobSpec(then_kind, then)])
    try:
        wait_for(lambda: job_of(services, b.id).status is Status.SUCCEEDED, timeout=30)
    finally:
        worker.stop()
    assert job_of(services, a.id).status.value == ending
    assert seen == [Status(ending)]
    assert job_of(services, b.id).result == ending


def test_a_job_after_one_that_is_gone_runs(services: Services) -> None:
    """A dependency pruned (or never there) does not hold the job forever."""
    kind = uid("core.orphan-")
    b = _enqueue(services, NewJob(kind, {}, uid("t-"), after_id="no-such-job"))[0]
    (claimed,) = services.jobs.claim("claimer", [kind], 10)
    assert claimed.id == b.id


def test_a_waiting_job_is_parked_out_of_the_claims_way_until_released(services: Services) -> None:
    """Waiting behind an active job sets waiting_on; the dependency's final state clears it."""
    dep_kind, then_kind = uid("core.dep-"), uid("core.then-")
    tenant = uid("t-")
    a = _enqueue(services, NewJob(dep_kind, {}, tenant))[0]
    b = _enqueue(services, NewJob(then_kind, {}, tenant, after_id=a.id))[0]
    assert (b.waiting_on, job_of(services, b.id).waiting_on) == (a.id, a.id)
    (running,) = services.jobs.claim("w", [dep_kind], 1)
    assert job_of(services, b.id).waiting_on == a.id  # running is not final
    with services.db.write() as s:
        services.jobs.complete(s, running, "w", None)
    assert job_of(services, b.id).waiting_on is None
    # After a job that is final already, nothing to wait for.
    c = _enqueue(services, NewJob(then_kind, {}, tenant, after_id=a.id))[0]
    assert c.waiting_on is None
    assert {j.id for j in services.jobs.claim("w", [then_kind], 10)} == {b.id, c.id}


def test_a_job_failing_for_good_releases_the_jobs_waiting_on_it(services: Services) -> None:
    dep_kind, then_kind = uid("core.dep-"), uid("core.then-")
    tenant = uid("t-")
    a = _enqueue(services, NewJob(dep_kind, {}, tenant, max_attempts=2))[0]
    b = _enqueue(services, NewJob(then_kind, {}, tenant, after_id=a.id))[0]
    (first,) = services.jobs.claim("w", [dep_kind], 1)
    assert services.jobs.fail(first, "w", "try again") is Status.QUEUED
    assert job_of(services, b.id).waiting_on == a.id  # a retry is not final
    with services.db.write() as s:  # due at once, not after the backoff
        s.execute(JOBS.update().where(JOBS.c.id == a.id).values(run_after=a.run_after))
    (second,) = services.jobs.claim("w", [dep_kind], 1)
    assert services.jobs.fail(second, "w", "no") is Status.FAILED
    assert job_of(services, b.id).waiting_on is None


def test_a_job_after_one_refused_in_the_same_call_is_released_by_the_reaper(
    alone: Services,
) -> None:
    """Its dependency was never written (a held key): the reaper's sweep frees it."""
    kind, then_kind, key, tenant = uid("core.keyed-"), uid("core.then-"), uid("k-"), uid("t-")
    _enqueue(alone, NewJob(kind, {}, tenant, exclusive_key=key))
    refused_id = uid("job-")
    with alone.db.write() as s:
        refused, b = alone.jobs.enqueue_many(
            s,
            [
                NewJob(kind, {}, tenant, exclusive_key=key, job_id=refused_id),
                NewJob(then_kind, {}, tenant, after_id=refused_id),
            ],
        )
    assert isinstance(refused, ExclusiveJobExists)
    assert isinstance(b, Job)
    assert b.waiting_on == refused_id
    assert alone.jobs.claim("w", [then_kind], 10) == []
    assert alone.jobs.release_orphans() == 1
    assert [j.id for j in alone.jobs.claim("w", [then_kind], 10)] == [b.id]


def test_regression_dependency_finished_while_its_dependent_was_being_enqueued(
    alone: Services,
) -> None:
    """PostgreSQL: the dependency's release ran before the dependent's transaction committed,
    so it did not see the dependent; the reaper's sweep releases it."""
    if not alone.db.is_postgres:
        pytest.skip("SQLite has one writer: the two transactions cannot overlap")
    dep_kind, then_kind, tenant = uid("core.dep-"), uid("core.then-"), uid("t-")
    a = _enqueue(alone, NewJob(dep_kind, {}, tenant))[0]
    with alone.db.write() as s:
        (b,) = alone.jobs.enqueue_many(s, [NewJob(then_kind, {}, tenant, after_id=a.id)])
        (running,) = alone.jobs.claim("w", [dep_kind], 1)
        with alone.db.write() as other:
            alone.jobs.complete(other, running, "w", None)
    assert isinstance(b, Job)
    assert job_of(alone, b.id).waiting_on == a.id
    assert alone.jobs.claim("w", [then_kind], 10) == []
    assert alone.jobs.release_orphans() == 1
    assert [j.id for j in alone.jobs.claim("w", [then_kind], 10)] == [b.id]


@pytest.mark.parametrize("short", [True, False], ids=["short", "threaded"])
def test_regression_a_released_job_waited_for_the_next_poll(
    services: Services, short: bool
) -> None:
    """Pins a bug: a worker woke after every settled job to claim again, and only that
    wake-up picked up the jobs the settled one released. It now wakes only when it was out
    of room, so the release itself must wake it (the poll here is a minute away)."""
    first_kind, then_kind = uid("core.first-"), uid("core.then-")

    def first(ctx: JobContext) -> str:
        time.sleep(0.2)  # ends well after the claim that took it
        return "a"

    worker = start_worker(
        services,
        [JobSpec(first_kind, first, short=short), JobSpec(then_kind, lambda ctx: "b")],
        poll_interval=60.0,
    )
    try:
        tenant, first_id = uid("t-"), new_job_id()
        a, b = _enqueue(
            services,
            NewJob(first_kind, {}, tenant, job_id=first_id),
            NewJob(then_kind, {}, tenant, after_id=first_id),
        )
        assert b.waiting_on == a.id  # queued behind it: only a's success releases it
        wait_for(lambda: job_of(services, b.id).status is Status.SUCCEEDED, timeout=20)
        assert job_of(services, a.id).status is Status.SUCCEEDED
    finally:
        worker.stop()
