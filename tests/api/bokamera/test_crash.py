"""A standalone worker SIGKILLed mid-sync: another worker resumes; exact counters, no duplicates."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.api.bokamera.conftest import SYNC, Company, customers, make_company, wait_done
from tests.harness import Server, fresh_database, spawn, start_server, wait_for


def _company(server: Server, client: httpx.Client, sim: Any) -> Company:
    """A company of the server's database with Vaka settings pointing at sim."""

    def make_principal(**kw: Any) -> Any:
        with server.services.db.write() as s:
            return server.services.auth.create(s, name=f"u-{uuid.uuid4().hex}", **kw)

    return make_company(client, make_principal, sim)


def test_sigkill_worker_mid_sync_resumes_without_duplicates(tmp_path: Path, vaka: Any) -> None:
    """Kill -9 the only worker part-way; a fresh worker finishes from the last checkpoint."""
    sim = vaka(600, latency=0.1, max_page_size=20)
    workers = []
    with fresh_database(str(tmp_path)) as url:
        server = start_server(url, embedded_worker=False)
        try:
            with server.client() as client:
                co = _company(server, client, sim)
                r = client.post(SYNC, json={}, headers=co.headers)
                assert r.status_code == 200, r.text
                sync_id = r.json()["Id"]
                workers.append(spawn(["worker"], server.env))

                def midway() -> dict[str, Any] | None:
                    body: dict[str, Any] = client.get(
                        f"{SYNC}/{sync_id}", headers=co.headers
                    ).json()
                    return body if 100 <= (body["UsersFound"] or 0) < 500 else None

                before = wait_for(midway, timeout=90, interval=0.05)
                assert before["Status"] == 1
                workers[0].kill()
                workers[0].wait(30)
                killed_at = client.get(f"{SYNC}/{sync_id}", headers=co.headers).json()
                assert killed_at["Status"] == 1
                assert killed_at["UsersFound"] < 600

                workers.append(spawn(["worker"], server.env))
                done = wait_done(client, co, sync_id, timeout=180)
                assert (done["Status"], done["ErrorMessage"]) == (2, None)
                assert (done["UsersFound"], done["UsersCreated"], done["UsersUpdated"]) == (
                    600,
                    600,
                    0,
                )
                rows = customers(client, co)
                assert len(rows) == 600
                assert {c["VakaUserId"] for c in rows} == {u["id"] for u in sim.state.users}
                with server.services.db.read() as s:
                    job = server.services.jobs.get(s, sync_id)
                assert job is not None
                assert job.attempts == 2
                # 30 pages; only the page in flight at the kill may have been fetched twice.
                assert 30 <= sim.state.requests <= 31
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                w.wait(30)
                if w.stderr is not None:
                    w.stderr.close()
            server.stop()


def test_regression_a_page_on_its_way_held_a_stopping_workers_exit(
    tmp_path: Path, vaka: Any
) -> None:
    """SIGTERM to a worker whose sync waits for a slow Vaka page: the job is handed back at
    the grace, and the process exits then. The page was fetched on an executor's thread,
    which the interpreter joins at exit: the worker lingered until Vaka answered."""
    sim = vaka(40, latency=6.0, max_page_size=20)
    with fresh_database(str(tmp_path)) as url:
        server = start_server(url, embedded_worker=False)
        worker = None
        try:
            with server.client() as client:
                co = _company(server, client, sim)
                sync_id = client.post(SYNC, json={}, headers=co.headers).json()["Id"]
                worker = spawn(
                    ["worker"],
                    {**server.env, "WRITEGATE_SHUTDOWN_GRACE_SECONDS": "0.5"},
                    log=str(tmp_path / "worker.log"),
                )
                wait_for(lambda: sim.state.requests >= 1, timeout=30)  # page 1 is on its way
                began = time.monotonic()
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
                assert time.monotonic() - began < 4, (tmp_path / "worker.log").read_text()
                with server.services.db.read() as s:
                    job = server.services.jobs.get(s, sync_id)
                assert job is not None
                assert (job.status.value, job.attempts) == ("queued", 0)
        finally:
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait(30)
            server.stop()
