"""New short jobs start as they are written (no claim), and only what was committed acts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select

from tests.harness import uid, wait_for
from tests.system.conftest import core_services, job_of, start_worker
from writegate.core.db import after_commit
from writegate.core.jobs import FINAL, Status
from writegate.core.services import Services
from writegate.core.worker import JobContext, JobSpec, Worker

scratch = MetaData()
marks = Table("core_test_handoff_marks", scratch, Column("id", String(64), primary_key=True))


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, without any API module."""
    with core_services(db_url, scratch) as svc:
        yield svc


@pytest.fixture
def worker(services: Services) -> Iterator[tuple[Worker, str]]:
    """A started worker of one short kind that records each job's mark; (worker, kind)."""
    kind = uid("core.handoff-")

    def handler(ctx: JobContext) -> Any:
        ctx.session.execute(insert(marks).values(id=ctx.payload["mark"]))
        return {"mark": ctx.payload["mark"]}

    w = start_worker(services, [JobSpec(kind, handler, short=True)])
    # Its first claim found no backlog: from then on it takes new jobs as they are written.
    wait_for(lambda: w.room(kind) > 0, timeout=10)
    yield w, kind
    w.stop()


def _final(services: Services, job_id: str) -> Any:
    job = job_of(services, job_id)
    return job if job is not None and job.status.value in FINAL else None


def test_a_new_short_job_starts_as_it_is_committed_without_a_claim(
    services: Services, worker: tuple[Worker, str]
) -> None:
    """Written as the worker's running attempt, it is started when its COMMIT is durable."""
    _, kind = worker
    mark = uid("m-")
    queued = services.db.group.run_sync(
        lambda s: services.jobs.enqueue(s, kind=kind, payload={"mark": mark}, tenant="t")
    )
    assert (queued.status, queued.attempts) == (Status.RUNNING, 1)
    done = wait_for(lambda: _final(services, queued.id))
    assert done.status == Status.SUCCEEDED
    assert done.result == {"mark": mark}
    # A claim would have started it later than it was written, and counted a second attempt.
    assert (done.attempts, done.started_at) == (1, done.created_at)


def test_a_paused_worker_takes_no_new_job_until_it_resumes_and_claims_it(
    services: Services, worker: tuple[Worker, str]
) -> None:
    w, kind = worker
    w.pause()
    mark = uid("m-")
    with services.db.write() as s:
        job = services.jobs.enqueue(s, kind=kind, payload={"mark": mark}, tenant="t")
    assert job.status == Status.QUEUED
    w.resume()
    done = wait_for(lambda: _final(services, job.id))
    assert done.status == Status.SUCCEEDED
    assert done.started_at > done.created_at  # claimed


def test_a_job_written_in_a_savepoint_rolled_back_is_never_handed_over(
    services: Services, worker: tuple[Worker, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: the hand-over is an action of the commit, dropped with its savepoint (a
    job that was never committed, run anyway, would end as a lost lease)."""
    caplog.set_level(logging.DEBUG, "writegate")
    w, kind = worker
    kept, dropped = uid("m-"), uid("m-")
    with services.db.write() as s:
        nested = s.begin_nested()
        gone = services.jobs.enqueue(s, kind=kind, payload={"mark": dropped}, tenant="t")
        nested.rollback()
        job = services.jobs.enqueue(s, kind=kind, payload={"mark": kept}, tenant="t")
    assert gone.status == job.status == Status.RUNNING
    wait_for(lambda: _final(services, job.id))
    wait_for(lambda: not w.short.active(), timeout=10)
    with services.db.read() as s:
        assert services.jobs.get(s, gone.id) is None
        assert set(s.scalars(select(marks.c.id).where(marks.c.id.in_([kept, dropped])))) == {kept}
    assert gone.id not in caplog.text


def test_commit_actions_run_once_committed_and_are_dropped_with_what_rolled_back(
    services: Services,
) -> None:
    ran: list[str] = []
    with services.db.write() as s:
        after_commit(s, lambda: ran.append("outer"))
        kept = s.begin_nested()
        after_commit(s, lambda: ran.append("released savepoint"))
        kept.commit()
        undone = s.begin_nested()
        after_commit(s, lambda: ran.append("rolled-back savepoint"))
        inner = s.begin_nested()
        after_commit(s, lambda: ran.append("inside the rolled-back savepoint"))
        inner.commit()
        undone.rollback()
        assert ran == []  # nothing before the COMMIT
    assert ran == ["outer", "released savepoint"]

    ran.clear()

    def failing() -> None:
        with services.db.write() as s:
            after_commit(s, lambda: ran.append("rolled back"))
            raise RuntimeError("the transaction fails")

    with pytest.raises(RuntimeError):
        failing()
    assert ran == []


def test_a_group_commit_caller_refused_drops_only_its_own_commit_actions(
    services: Services,
) -> None:
    ran: list[str] = []

    def write(name: str, refuse: bool) -> Any:
        def fn(s: Any) -> str:
            after_commit(s, lambda: ran.append(name))
            if refuse:
                raise ValueError(name)
            return name

        return fn

    async def callers() -> list[Any]:
        return await asyncio.gather(
            services.db.group.run(write("first", False)),
            services.db.group.run(write("refused", True)),
            services.db.group.run(write("last", False)),
            return_exceptions=True,
        )

    first, refused, last = asyncio.run(callers())
    assert (first, last) == ("first", "last")
    assert isinstance(refused, ValueError)
    assert sorted(ran) == ["first", "last"]


def test_an_action_that_fails_after_commit_fails_neither_the_write_nor_the_others(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """The COMMIT is durable by then: an error raised into it would make the group commit
    run the writes again."""
    ran: list[str] = []
    mark = uid("m-")

    def write(s: Any) -> str:
        s.execute(insert(marks).values(id=mark))
        after_commit(s, lambda: 1 / 0)
        after_commit(s, lambda: ran.append("after the failing one"))
        return mark

    assert services.db.group.run_sync(write) == mark
    assert ran == ["after the failing one"]
    assert "ZeroDivisionError" in caplog.text
    with services.db.read() as s:
        assert list(s.scalars(select(marks.c.id).where(marks.c.id == mark))) == [mark]
