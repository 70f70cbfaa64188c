"""SIGKILL of `writegate serve` while clients are sending: accepted means durable."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from tests.harness import free_port, fresh_database, wait_for
from tests.system.faults import ServeProcess, serve_env
from writegate.core.db import Database
from writegate.core.jobs import JobRow, Status
from writegate.core.services import Services
from writegate.settings import Settings

CLIENTS = 12
ENTITY_PATH = "/one-entities-post-one"


class Ledger:
    """What each client saw, per entity number: accepted (job id), refused or unknown."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: dict[str, str] = {}
        self.refused: dict[str, int] = {}
        self.unknown: set[str] = set()

    def record(self, number: str, outcome: str, value: Any = None) -> None:
        """Store one outcome."""
        with self.lock:
            if outcome == "accepted":
                self.accepted[number] = value
            elif outcome == "refused":
                self.refused[number] = value
            else:
                self.unknown.add(number)

    def count(self) -> int:
        """Accepted so far."""
        with self.lock:
            return len(self.accepted)


def _client_loop(
    url: str, next_number: Callable[[], int], ledger: Ledger, stop: threading.Event
) -> None:
    with httpx.Client(base_url=url, timeout=10) as c:
        while not stop.is_set():
            n = next_number()
            number = f"{n:04d}"
            # One request in five is invalid: it must be refused and leave nothing behind.
            bad = n % 5 == 0
            body = {"entity_number": number, "entity_name": "" if bad else f"E{number}"}
            try:
                r = c.post(ENTITY_PATH, json=body)
            except httpx.HTTPError:
                ledger.record(number, "unknown")
                continue
            data = r.json()
            if r.status_code == 202 and data["is_accepted"] is True:
                ledger.record(number, "accepted", data["job_id"])
            else:
                assert data["is_accepted"] is False, r.text
                ledger.record(number, "refused", r.status_code)


def _jobs_by_entity(db: Database) -> dict[str, list[JobRow]]:
    out: dict[str, list[JobRow]] = {}
    with db.read() as s:
        for row in s.scalars(select(JobRow).where(JobRow.kind == "jef_one.upsert_entity")):
            out.setdefault(row.payload["entity_number"], []).append(row)
    return out


def test_sigkill_serve_under_traffic_loses_no_accepted_write(tmp_path: Path) -> None:
    """Clients keep posting while serve is SIGKILLed twice; every 202 survives and runs once."""
    with fresh_database(str(tmp_path)) as url:
        env = serve_env(url, ["jef_one"])
        srv = ServeProcess(env=env, log=str(tmp_path / "serve.log"), port=free_port())
        ledger = Ledger()
        numbers = itertools.count(1)
        lock = threading.Lock()

        def next_number() -> int:
            with lock:
                return next(numbers)

        try:
            for round_ in range(2):
                srv.start()
                stop = threading.Event()
                threads = [
                    threading.Thread(target=_client_loop, args=(srv.url, next_number, ledger, stop))
                    for _ in range(CLIENTS)
                ]
                for t in threads:
                    t.start()
                target = ledger.count() + 150
                wait_for(lambda t=target: ledger.count() >= t, 120, interval=0.01)
                srv.kill()  # mid-traffic: requests are in flight right now
                stop.set()
                for t in threads:
                    t.join(30)
                assert srv.proc is not None
                assert srv.proc.returncode == -9, round_
            srv.start()  # recovery: the reaper requeues what the dead server was running

            db = Database(url, pool_size=2)
            try:

                def all_final() -> bool:
                    jobs = _jobs_by_entity(db)
                    return all(
                        rows[0].status == Status.SUCCEEDED.value
                        for n in ledger.accepted
                        for rows in [jobs.get(n, [])]
                        if rows
                    ) and all(n in jobs for n in ledger.accepted)

                wait_for(all_final, 120, interval=0.3)
                jobs = _jobs_by_entity(db)
                with httpx.Client(base_url=srv.url, timeout=10) as c:
                    for number, job_id in ledger.accepted.items():
                        assert [r.id for r in jobs[number]] == [job_id], number
                        view = c.get(
                            "/jef-one-get-entity-by-entity-number",
                            params={"entity_number": number},
                        ).json()
                        assert view["is_found"] is True, (number, srv.tail())
                        assert view["entity_name"] == f"E{number}"
                for number in ledger.refused:
                    assert number not in jobs, f"refused {number} was written"
                for number in ledger.unknown:
                    assert len(jobs.get(number, [])) <= 1, number
                statuses = Counter(ledger.refused.values())
                assert set(statuses) <= {400, 503}, statuses
                assert len(ledger.accepted) >= 300
                assert len(ledger.refused) >= 50
            finally:
                db.dispose()
        finally:
            srv.stop()


def test_regression_sigterm_left_the_embedded_workers_job_running(tmp_path: Path) -> None:
    """SIGTERM to `serve` while its embedded worker runs a job past the grace: the job is
    handed back (queued, its attempt not counted, no lease). On SQLite the hand-back was
    refused ("run_sync would block the event loop that commits"): the job stayed running on
    the dead process's lease, its exclusive key held, until the lease expired."""
    with fresh_database(str(tmp_path)) as url:
        env = serve_env(url, ["tests.testkit"], shutdown_grace_seconds=0.5, job_lease_seconds=60.0)
        srv = ServeProcess(env=env, log=str(tmp_path / "serve.log"), port=free_port())
        services = Services.build(Settings(database_url=url, modules=[]))
        try:
            srv.start()
            with services.db.write() as s:
                job = services.jobs.enqueue(
                    s, kind="testkit.hang", payload={"sleep": 60}, tenant="t", exclusive_key="k"
                )

            def status() -> str:
                with services.db.read() as s:
                    found = services.jobs.get(s, job.id)
                    assert found is not None
                    return found.status.value

            wait_for(lambda: status() == "running", timeout=30)
            srv.stop()
            assert "Application shutdown complete" in srv.tail(20000)
            with services.db.read() as s:
                after = services.jobs.get(s, job.id)
            assert after is not None
            assert (after.status.value, after.attempts, after.lease_owner) == ("queued", 0, None), (
                srv.tail()
            )
            assert "handed back unfinished at shutdown" in srv.tail(20000)
        finally:
            srv.stop()
            services.close()
