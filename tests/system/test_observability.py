"""Metrics, request ids and readiness of a live server, over real HTTP and a real database."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.harness import Server, fresh_database, start_server, uid, wait_for
from tests.system.obskit import accept_entity, has, scrape, value, wait_job
from writegate.app import migrate
from writegate.core.jobs import Status

MODULES = ["jef_one", "tests.testkit"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the jef-one and testkit modules on a database of its own."""
    with fresh_database(str(tmp_path_factory.mktemp("obs"))) as url:
        server = start_server(url, modules=MODULES)
        yield server
        server.stop()


def _final(srv: Server, job_id: str) -> Any:
    def done() -> Any:
        with srv.services.db.read() as s:
            job = srv.services.jobs.get(s, job_id)
        return job if job is not None and job.status in (Status.SUCCEEDED, Status.FAILED) else None

    return wait_for(done, 60)


def _enqueue(srv: Server, kind: str, payload: dict[str, Any]) -> str:
    with srv.services.db.write() as s:
        return srv.services.jobs.enqueue(s, kind=kind, payload=payload, tenant=uid("t-")).id


def test_metrics_count_requests_by_api_route_and_status(srv: Server) -> None:
    """Each request moves its (api, route, method, status) histogram; unmatched paths share one."""
    before = scrape(srv.url)
    with srv.client() as c:
        accept_entity(c)
        accept_entity(c)
        bad = c.post("/one-entities-post-one", json={"entity_number": 5})
        assert bad.status_code == 400
        assert c.get(f"/no-such-path/{uid()}").status_code == 404
    after = scrape(srv.url)
    name = "writegate_http_request_duration_seconds_count"
    route = {"api": "jef_one", "route": "/one-entities-post-one", "method": "POST"}
    assert (
        value(after, name, **route, status="202") - value(before, name, **route, status="202") == 2
    )
    assert (
        value(after, name, **route, status="400") - value(before, name, **route, status="400") == 1
    )
    lost = {"api": "core", "route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, name, **lost) - value(before, name, **lost) == 1
    assert has(after, "writegate_http_request_duration_seconds_bucket", **route, le="0.005")


def test_regression_the_openapi_document_was_counted_as_unmatched(srv: Server) -> None:
    """A request answered by a Starlette route (the OpenAPI document) was labelled
    `unmatched`, the label of paths no route knows; it has its path."""
    before = scrape(srv.url)
    with srv.client() as c:
        assert c.get("/openapi.json").status_code == 200
    after = scrape(srv.url)
    name = "writegate_http_request_duration_seconds_count"
    served = {"route": "/openapi.json", "method": "GET", "status": "200"}
    assert value(after, name, **served) - value(before, name, **served) == 1
    unmatched = {"route": "unmatched", "status": "200"}
    assert value(after, name, **unmatched) == value(before, name, **unmatched)


def test_job_counters_and_histograms_move_with_job_runs(srv: Server) -> None:
    """Enqueued, started, succeeded, retried and failed counts, run time and pickup delay."""
    before = scrape(srv.url)
    with srv.client() as c:
        accepted = accept_entity(c).json()["job_id"]
        assert wait_job(c, accepted)["job_status"] == "succeeded"
    flaky = _enqueue(srv, "testkit.flaky", {"succeed_on": 2})
    broken = _enqueue(srv, "testkit.broken", {"permanent": True})
    assert _final(srv, flaky).status == Status.SUCCEEDED
    assert _final(srv, broken).status == Status.FAILED

    def moved() -> Any:
        after = scrape(srv.url)
        return (
            after
            if value(after, "writegate_jobs_failed_total")
            > value(before, "writegate_jobs_failed_total")
            else None
        )

    after = wait_for(moved, 10)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    entity = "jef_one.upsert_entity"
    assert delta("writegate_jobs_enqueued_total", kind=entity) == 1
    assert delta("writegate_jobs_started_total", kind=entity) == 1
    assert delta("writegate_jobs_succeeded_total", kind=entity) == 1
    assert delta("writegate_job_run_seconds_count", kind=entity, outcome="succeeded") == 1
    assert delta("writegate_job_pickup_delay_seconds_count", kind=entity) == 1
    assert delta("writegate_jobs_enqueued_total", kind="testkit.flaky") == 1
    assert delta("writegate_jobs_started_total", kind="testkit.flaky") == 2
    assert delta("writegate_jobs_retried_total", kind="testkit.flaky") == 1
    assert delta("writegate_jobs_succeeded_total", kind="testkit.flaky") == 1
    assert delta("writegate_job_run_seconds_count", kind="testkit.flaky", outcome="retried") == 1
    assert delta("writegate_jobs_failed_total", kind="testkit.broken") == 1
    assert delta("writegate_jobs_retried_total", kind="testkit.broken") == 0
    assert delta("writegate_group_commit_batch_size_count") >= 1
    assert has(after, "writegate_db_pool_connections_in_use")


def test_sqlite_a_loop_batch_sent_to_a_commit_thread_is_counted(srv: Server) -> None:
    """A write lock held outside the group commit sends the event loop's batch to a commit
    thread: the move is counted, and the accept answers once the lock is free."""
    if not srv.services.db.is_sqlite:
        pytest.skip("SQLite: PostgreSQL has no one writer lock")
    name = "writegate_group_commit_writer_busy_total"
    # An earlier test's job finishing on a commit thread would wait for the lock and keep the
    # writer's turn, so the loop's batch would run after the release instead of moving.
    worker = srv.app.state.worker
    worker.pause()
    holding, release = threading.Event(), threading.Event()
    answers: list[httpx.Response] = []

    def hold() -> None:
        with srv.services.db.write() as s:
            s.connection()  # BEGIN IMMEDIATE: the writer lock, until released
            holding.set()
            release.wait(30)

    def accept() -> None:
        with srv.client() as c:
            answers.append(accept_entity(c))

    holder, client = threading.Thread(target=hold), threading.Thread(target=accept)
    try:
        wait_for(lambda: not worker.running_jobs(), 30)
        before = value(scrape(srv.url), name)
        holder.start()
        assert holding.wait(30)
        client.start()
        # Released only once the move is counted: no timer races the request.
        wait_for(lambda: value(scrape(srv.url), name) > before, 30)
        assert not answers  # the accept waits for the lock
    finally:
        release.set()
        worker.resume()
        for thread in (holder, client):
            if thread.ident is not None:
                thread.join(30)
    assert [r.status_code for r in answers] == [202]


def test_queue_gauges_read_the_jobs_table_at_scrape_time(srv: Server) -> None:
    """Queued count and oldest due age per kind; idle registered kinds show 0."""
    clock = srv.services.clock
    worker = srv.app.state.worker  # paused: the jobs must stay queued while scraped
    worker.pause()
    try:
        ids = [_enqueue(srv, "testkit.write", {}) for _ in range(3)]
        clock.advance(timedelta(seconds=40))
        samples = scrape(srv.url)
        assert value(samples, "writegate_jobs_queued", kind="testkit.write") == 3
        age = value(samples, "writegate_jobs_oldest_queued_age_seconds", kind="testkit.write")
        assert 40 <= age < 100
        assert value(samples, "writegate_jobs_queued", kind="testkit.hang") == 0
        assert has(samples, "writegate_jobs_running", kind="testkit.hang")
    finally:
        clock.reset()
        worker.resume()
    for job_id in ids:
        assert _final(srv, job_id).status == Status.SUCCEEDED
    assert value(scrape(srv.url), "writegate_jobs_queued", kind="testkit.write") == 0


def test_request_id_is_taken_from_the_request_or_made(srv: Server) -> None:
    """X-Request-ID comes back as sent; a missing or unusable one is replaced by a new id."""
    with srv.client() as c:
        assert (
            c.get("/healthz", headers={"x-request-id": "abc-123.X"}).headers["x-request-id"]
            == "abc-123.X"
        )
        made = c.get("/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        assert c.get("/healthz").headers["x-request-id"] != made
        for unusable in ("two words", "x" * 129, "é"):
            sent = unusable.encode()
            r = c.get("/healthz", headers=[(b"x-request-id", sent)])
            assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), unusable
        # Refusals made before any handler runs (BodyLimit's 413) carry it too.
        big = c.post(
            "/testkit/direct",
            content=b"x" * (srv.settings.max_body_bytes + 1),
            headers={"x-request-id": "big-1", "content-type": "application/json"},
        )
        assert big.status_code == 413
        assert big.headers["x-request-id"] == "big-1"


def test_job_keeps_the_request_id_of_the_request_that_enqueued_it(srv: Server) -> None:
    """The accepted job's row stores the request id (its trace_context)."""
    rid = uid("rid-")
    with srv.client() as c:
        job_id = accept_entity(c, {"x-request-id": rid}).json()["job_id"]
        wait_job(c, job_id)
    with srv.services.db.read() as s:
        job = srv.services.jobs.get(s, job_id)
    assert job.trace_context == {"request_id": rid}


def test_readyz_is_503_until_the_schema_is_at_head(tmp_path: Any) -> None:
    """/readyz: 503 (schema missing) on an unmigrated database, 200 once migrated."""
    with fresh_database(str(tmp_path)) as url:
        server = start_server(url, auto_migrate=False, embedded_worker=False, modules=["jef_one"])
        try:
            with server.client() as c:
                r = c.get("/readyz")
                assert r.status_code == 503, r.text
                assert r.json() == {
                    "database": "ok",
                    "schema": "missing",
                    "worker": "off",
                    "status": "not ready",
                }
                assert c.get("/healthz").status_code == 200
                migrate(server.services)
                r = c.get("/readyz")
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "ready"
        finally:
            server.stop()


def test_regression_readyz_was_never_ready_on_a_newer_schema(tmp_path: Any) -> None:
    """A process of the old release on a schema a newer release migrated (a rolling upgrade's
    first step) starts, as the docs promise, but /readyz said "schema: behind" and 503 for
    good, so it never took traffic. A schema ahead of the release is ready."""
    with fresh_database(str(tmp_path)) as url:
        first = start_server(url, embedded_worker=False, modules=["jef_one"])
        with first.services.db.write() as s:  # what a newer release's migration leaves
            s.execute(text("INSERT INTO alembic_version (version_num) VALUES ('next_0001')"))
        first.stop()
        server = start_server(url, auto_migrate=False, embedded_worker=False, modules=["jef_one"])
        try:
            with server.client() as c:
                r = c.get("/readyz")
            assert r.status_code == 200, r.text
            assert r.json() == {
                "database": "ok",
                "schema": "ahead",
                "worker": "off",
                "status": "ready",
            }
        finally:
            server.stop()


def test_livez_answers_without_the_database_and_is_no_api(srv: Server) -> None:
    """/livez: the liveness probe, 200 with no database read, outside the OpenAPI document
    (its database-down case: tests/system/test_faults_database.py)."""
    with srv.client() as c:
        r = c.get("/livez")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        assert "/livez" not in c.get("/openapi.json").json()["paths"]


def test_regression_probes_answered_head_with_405(srv: Server) -> None:
    """Load balancers' health checks often send HEAD: each probe answers it as its GET,
    without the body (they answered 405)."""
    with srv.client() as c:
        for path in ("/livez", "/readyz", "/healthz", "/metrics"):
            head, get = c.head(path), c.get(path)
            assert (head.status_code, head.content) == (get.status_code, b""), path
            assert get.status_code == 200, path
            assert head.headers["content-type"] == get.headers["content-type"], path


def test_readyz_reports_the_embedded_worker(srv: Server) -> None:
    """The embedded worker's state is part of the readiness report."""
    with srv.client() as c:
        r = c.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "database": "ok",
        "schema": "at head",
        "worker": "running",
        "status": "ready",
    }


def test_readyz_is_503_when_the_database_is_gone(tmp_path: Any) -> None:
    """A database that does not answer makes the server not ready (liveness is separate)."""
    url = f"sqlite:///{tmp_path}/missing-dir/none.db"
    server = start_server(url, auto_migrate=False, embedded_worker=False, modules=["jef_one"])
    try:
        r = httpx.get(f"{server.url}/readyz", timeout=30)
        assert r.status_code == 503
        assert r.json()["database"] == "unavailable"
    finally:
        server.stop()


def test_regression_a_client_leaving_mid_body_counted_as_a_server_error(srv: Server) -> None:
    """A client that closes its connection before its body is complete gets no answer; it was
    counted as status 500 (a false alarm on every 5xx panel). It is counted as 499, the
    client's leaving."""
    name = "writegate_http_request_duration_seconds_count"
    before = scrape(srv.url)
    host, port = srv.url.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                b"POST /one-entities-post-one HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                b'{"entity_'
            )
            time.sleep(0.05)

    def counted() -> bool:
        after = scrape(srv.url)
        left = value(after, name, status="499") - value(before, name, status="499")
        return left >= 3

    wait_for(counted, timeout=10, interval=0.1)
    after = scrape(srv.url)
    assert value(after, name, status="500") == value(before, name, status="500")
