"""Regression: an error in the dispatcher outside its claim (the LISTEN socket, the wait for a
wake-up) ended the dispatcher's thread, and the worker never claimed a job again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import MetaData

from tests.harness import uid, wait_for
from tests.system.conftest import core_services, job_of, start_worker
from writegate.core.jobs import Status
from writegate.core.services import Services
from writegate.core.worker import JobContext, JobSpec


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, without any API module."""
    with core_services(db_url, MetaData()) as svc:
        yield svc


def test_the_dispatcher_claims_again_after_an_error_while_it_waits(services: Services) -> None:
    kind = uid("core.after-error-")

    def handler(ctx: JobContext) -> Any:
        return {"ran": ctx.job.id}

    worker = start_worker(services, [JobSpec(kind, handler)])
    failed = threading.Event()
    idle = worker._idle

    def fails_once(listener: Any) -> None:
        if not failed.is_set():
            failed.set()
            raise OSError("the LISTEN socket went away")
        idle(listener)

    worker._idle = fails_once  # type: ignore[method-assign]
    try:
        worker.wakeup.set()  # a claim that finds nothing, then the wait that fails
        assert failed.wait(10)
        with services.db.write() as s:
            job = services.jobs.enqueue(s, kind=kind, payload={}, tenant="t")
        wait_for(lambda: job_of(services, job.id).status == Status.SUCCEEDED, 10)
        assert worker.state == "running"
    finally:
        worker.stop()
