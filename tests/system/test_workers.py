"""Worker processes: crash recovery and exactly-once execution, measured in business rows."""

from __future__ import annotations

import os
import signal
from typing import Any

from sqlalchemy import select

from tests.harness import Server, wait_for
from tests.system.conftest import all_done, effect_counts, enqueue_many
from tests.testkit import effects
from writegate.core.jobs import JobRow, Status


def _job(server: Server, job_id: str) -> JobRow:
    with server.services.db.read() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        return row


def test_sigkill_mid_job_reruns_after_lease_and_applies_once(
    bare_server: Server, workers: Any
) -> None:
    """A worker killed inside a job's transaction: the job reruns elsewhere, one effect."""
    [job_id] = enqueue_many(bare_server, "testkit.write", 1, {"sleep": 30, "sleep_attempts": 1})
    victim = workers(concurrency=1)
    wait_for(lambda: _job(bare_server, job_id).status == Status.RUNNING.value, 60)
    owner = _job(bare_server, job_id).lease_owner or ""
    assert f":{victim.pid}:" in owner
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    assert effect_counts(bare_server) == {}  # the killed transaction left nothing behind

    rescuer = workers(concurrency=1)
    wait_for(lambda: _job(bare_server, job_id).status == Status.SUCCEEDED.value, 60)
    row = _job(bare_server, job_id)
    assert row.attempts == 2
    assert f":{rescuer.pid}:" not in owner
    assert effect_counts(bare_server) == {job_id: 1}
    with bare_server.services.db.read() as s:
        worker = s.scalar(select(effects.c.worker).where(effects.c.job_id == job_id))
    assert f":{rescuer.pid}:" in (worker or "")


def test_several_worker_processes_drain_each_job_exactly_once(
    bare_server: Server, workers: Any
) -> None:
    """Three worker processes drain 3,000 jobs: every job succeeds with exactly one effect."""
    ids = enqueue_many(bare_server, "testkit.write", 3000, {})
    for _ in range(3):
        workers(concurrency=4)
    wait_for(lambda: all_done(bare_server, 3000), 240, interval=0.5)
    counts = effect_counts(bare_server)
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}
    with bare_server.services.db.read() as s:
        doers = set(s.scalars(select(effects.c.worker).distinct()))
    assert len(doers) >= 2, "the work should be spread over several processes"
