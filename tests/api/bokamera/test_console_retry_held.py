"""Retrying a cancelled sync while another sync of the company runs: refused in one line."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.bokamera.conftest import start_sync, wait_done
from tests.harness import Server, wait_for
from tests.system.clirun import writegate


def _status(server: Server, job_id: str) -> str:
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, job_id)
        assert job is not None
        return job.status.value


def test_retry_of_cancelled_sync_while_another_runs(
    server: Server, client: httpx.Client, vaka: Any, company: Any
) -> None:
    """`jobs retry` names the running sync that holds the company's key and exits 1."""
    sim = vaka(300, latency=0.2, max_page_size=10)
    c = company(sim)
    first = start_sync(client, c)["Id"]
    wait_for(lambda: _status(server, first) == "running", timeout=30)
    server.services.jobs.cancel(first)
    second = start_sync(client, c)["Id"]
    wait_for(lambda: _status(server, second) == "running", timeout=30)

    out = writegate(server, "jobs", "retry", first)
    assert out.returncode == 1, out.stdout
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"job {first} cannot be retried: its exclusive key is held by active job {second}"
    ]
    assert _status(server, first) == "cancelled"
    wait_done(client, c, second)
    again = writegate(server, "jobs", "retry", first)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"job {first}: queued again"
