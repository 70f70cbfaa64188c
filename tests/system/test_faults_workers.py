"""Random SIGKILLs of worker processes over hundreds of jobs: each job applies exactly once."""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

from tests.harness import Server, wait_for
from tests.system.conftest import all_done, effect_counts, status_counts

JOBS = 400
KILLS = 8


def _enqueue(server: Server, n: int) -> list[str]:
    ids = []
    with server.services.db.write() as s:
        for i in range(n):
            # A short sleep between the effect insert and the commit makes kills land
            # mid-transaction; generous attempts so a job killed repeatedly still finishes.
            job = server.services.jobs.enqueue(
                s,
                kind="testkit.write",
                payload={"sleep": 0.01 if i % 4 else 0.05},
                tenant="faults",
                max_attempts=50,
            )
            ids.append(job.id)
    return ids


def test_random_worker_kills_every_job_applies_exactly_once(
    bare_server: Server, workers: Any
) -> None:
    """Workers die at random moments; every job still succeeds with exactly one effect row."""
    ids = _enqueue(bare_server, JOBS)
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    live = [workers(concurrency=4) for _ in range(3)]
    killed = 0
    wait_for(lambda: status_counts(bare_server).get("succeeded", 0) > 0, 60)
    while killed < KILLS and not all_done(bare_server, JOBS):
        time.sleep(rng.uniform(0.05, 0.4))
        victim = live.pop(rng.randrange(len(live)))
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        killed += 1
        live.append(workers(concurrency=4))
    wait_for(lambda: all_done(bare_server, JOBS), 180, interval=0.3)
    counts = effect_counts(bare_server)
    assert set(counts) == set(ids)
    doubled = {k: v for k, v in counts.items() if v != 1}
    assert doubled == {}, f"jobs applied more than once: {doubled}"
    assert status_counts(bare_server) == {"succeeded": JOBS}
    assert killed >= 3, "the run should have survived several kills"
