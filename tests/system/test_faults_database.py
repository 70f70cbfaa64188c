"""PostgreSQL going away and coming back: a clear retryable error, then no job lost or doubled.

Runs against a private throw-away cluster, never the shared one other tests use.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import Server, backend, spawn, start_server, stop_processes, wait_for
from tests.system.apis import REFUSAL, present_modules, request_headers
from tests.system.conftest import all_done, effect_counts, status_counts
from tests.system.faults import PrivateCluster, private_postgres

pytestmark = pytest.mark.skipif(
    backend() != "postgresql", reason="restarting a database server only applies to PostgreSQL"
)

ENTITY_PATH = "/one-entities-post-one"

#: per API: a write call, and how its refusal says "unavailable, retry"
OUTAGE_CALLS: dict[str, tuple[str, dict[str, object], Callable[[httpx.Response], bool]]] = {
    "jef_one": (
        "/one-employees-post-one",
        {"entity_number": "0001", "employee_number": "00001", "employee_name": "x"},
        lambda r: r.status_code == 503 and r.json()["error_code"] == "DATABASE_UNAVAILABLE",
    ),
    "ikonomikal": (
        "/bcss_wbcl_wa_sc/api/O1_getSCSessWBLogVer",
        {"userID": "someone@example.com", "userPW": "pw"},
        lambda r: r.json()["rspPrc"]["rspID"] == 9000008,
    ),
    "bokamera": (
        "/codelock/axema/usersync",
        {},
        lambda r: (
            r.status_code == 503 and r.json()["ResponseStatus"]["ErrorCode"] == "ServiceUnavailable"
        ),
    ),
    "abs": (
        "/model/package/putDb",
        {"client_code": "ENX"},
        lambda r: r.json()["error"] == "SERVICE_UNAVAILABLE",
    ),
}


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster for this test only."""
    with private_postgres() as c:
        yield c


def _enqueue(server: Server, n: int, sleep: float) -> list[str]:
    with server.services.db.write() as s:
        return [
            server.services.jobs.enqueue(
                s, kind="testkit.write", payload={"sleep": sleep}, tenant="dbdown"
            ).id
            for _ in range(n)
        ]


def _post_entity(c: httpx.Client, number: str) -> httpx.Response:
    return c.post(ENTITY_PATH, json={"entity_number": number, "entity_name": f"E{number}"})


def test_database_restart_gives_retryable_errors_and_loses_nothing(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    """Stop PostgreSQL mid-run: 503 in each envelope; after restart every job runs once."""
    srv = start_server(
        cluster.url, embedded_worker=False, modules=[*present_modules(), "tests.testkit"]
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(2):
            procs.append(
                spawn(["worker", "--concurrency", "4"], srv.env, log=str(tmp_path / f"w{i}.log"))
            )
        before = _enqueue(srv, 150, 0.1)
        with srv.client() as c:
            accepted = {}
            for n in range(1, 21):
                r = _post_entity(c, f"{n:04d}")
                assert r.status_code == 202, r.text
                accepted[f"{n:04d}"] = r.json()["job_id"]
            wait_for(lambda: status_counts(srv).get("succeeded", 0) >= 20, 60)
            headers = {m: request_headers(srv, m) for m in present_modules()}

            cluster.stop("immediate")  # a crash, as far as every client can tell
            refused = []
            for n in range(21, 31):
                r = _post_entity(c, f"{n:04d}")
                assert r.status_code == 503, r.text
                body = r.json()
                assert body["is_accepted"] is False
                assert body["error_code"] == "DATABASE_UNAVAILABLE"
                assert r.headers["retry-after"] == "1"
                refused.append(f"{n:04d}")
            r = c.get("/jef-one-get-job-by-job-id", params={"job_id": accepted["0001"]})
            assert r.status_code == 503
            assert r.json()["error_type"] == "service_unavailable"
            health = c.get("/healthz")
            assert health.status_code == 503
            assert health.json()["error"] == "unavailable"
            # The liveness probe does not fail with the database: a restart mends nothing.
            assert c.get("/livez").json() == {"status": "ok"}
            for module, (path, body, says_retry) in OUTAGE_CALLS.items():
                if module not in headers:
                    continue
                r = c.post(path, json=body, headers=headers[module])
                assert REFUSAL[module](r), (module, r.status_code, r.text)
                assert says_retry(r), (module, r.text)
            assert all(p.poll() is None for p in procs), "workers must survive the outage"

            cluster.start()
            wait_for(lambda: c.get("/healthz").status_code == 200, 60, interval=0.2)
            for n in range(31, 41):
                r = _post_entity(c, f"{n:04d}")
                assert r.status_code == 202, r.text
                accepted[f"{n:04d}"] = r.json()["job_id"]
            after = _enqueue(srv, 50, 0.0)

            total = len(before) + len(after) + len(accepted)
            wait_for(lambda: all_done(srv, total), 120, interval=0.3)
            counts = effect_counts(srv)
            assert set(counts) == set(before) | set(after)
            assert set(counts.values()) == {1}, "a job applied twice"
            for number, job_id in accepted.items():
                view = c.get(
                    "/jef-one-get-entity-by-entity-number", params={"entity_number": number}
                ).json()
                assert view["is_found"] is True, number
                job = c.get("/jef-one-get-job-by-job-id", params={"job_id": job_id}).json()
                assert job["job_status"] == "succeeded"
            for number in refused:
                view = c.get(
                    "/jef-one-get-entity-by-entity-number", params={"entity_number": number}
                ).json()
                assert view["is_found"] is False, f"refused {number} was written"
            assert status_counts(srv) == {"succeeded": total}
    finally:
        stop_processes(procs)
        srv.stop()
        srv.services.close()
