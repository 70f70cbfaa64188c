"""Logs, metrics and probes of real `writegate serve` and `writegate worker` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import (
    FAST,
    Server,
    free_port,
    fresh_database,
    spawn,
    stop_processes,
    uid,
    wait_for,
)
from tests.system.conftest import enqueue_many
from tests.system.obskit import accept_entity, has, json_lines, scrape, value, wait_job


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {f"WRITEGATE_{k.upper()}": str(v) for k, v in FAST.items()}
    env.update(WRITEGATE_DATABASE_URL=db_url, WRITEGATE_MODULES='["jef_one"]', **extra)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes to stop at the end of the test."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop_processes(started)


def _serve(procs: list[subprocess.Popen[bytes]], env: dict[str, str], log: Path, *args: str) -> str:
    port = free_port()
    full = {**os.environ, **env}
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        full.pop("PROMETHEUS_MULTIPROC_DIR", None)
    p = spawn(["serve", "--port", str(port), *args], full, log=str(log), cwd=os.getcwd())
    procs.append(p)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert p.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 90, 0.2)
    return url


def test_a_request_id_is_on_every_log_line_of_its_request_and_of_its_job(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """JSON logs of `serve`: the request id sent in is on its access line and on its job's lines."""
    log = tmp_path / "serve.log"
    rid = uid("req-")
    with fresh_database(str(tmp_path)) as db:
        url = _serve(procs, _env(db, WRITEGATE_LOG_LEVEL="debug"), log, "--log-format", "json")
        with httpx.Client(base_url=url, timeout=30) as c:
            r = accept_entity(c, {"x-request-id": rid})
            assert r.headers["x-request-id"] == rid
            job_id = r.json()["job_id"]
            assert wait_job(c, job_id)["job_status"] == "succeeded"
        stop_processes(procs)
    lines = json_lines(log)  # every line is JSON: uvicorn's and writegate's alike
    assert {"timestamp", "level", "logger", "message"} <= set(lines[0])
    access = [x for x in lines if x["logger"] == "uvicorn.access" and x.get("request_id") == rid]
    assert len(access) == 1, lines
    assert access[0]["method"] == "POST"
    assert access[0]["path"] == "/one-entities-post-one"
    assert access[0]["status"] == 202
    assert access[0]["api"] == "jef_one"
    of_job = [x for x in lines if x.get("job_id") == job_id]
    assert len(of_job) >= 2, lines  # started and succeeded, at DEBUG
    for line in of_job:
        assert line["request_id"] == rid, line
        assert line["api"] == "jef_one"
        assert line["tenant"]
    # The probes' successful access lines are left out.
    assert not [x for x in lines if x.get("path") == "/readyz" and x.get("status") == 200]


def test_console_format_is_readable_lines(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """--log-format console: key=value lines, not JSON, still with the request id."""
    log = tmp_path / "serve.log"
    with fresh_database(str(tmp_path)) as db:
        url = _serve(procs, _env(db), log, "--log-format", "console")
        httpx.get(f"{url}/no-such-path", headers={"x-request-id": "console-1"}, timeout=30)
        stop_processes(procs)
    text = log.read_text()
    assert "request_id=console-1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


RICH_PROBE = """
import logging, sys
from writegate.core.observability.logging import setup_logging
setup_logging("info", "console")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("probe").exception("boom")
print("rich" in sys.modules, "pygments" in sys.modules)
import rich.console  # the CLI's tables import it when they draw
print(rich.console.Console.__name__)
"""


def test_regression_structlog_loads_rich_into_every_process() -> None:
    """Logging leaves rich unloaded (5 MB a process), console lines still show tracebacks,
    and rich imports as usual afterwards."""
    out = subprocess.run(
        [sys.executable, "-c", RICH_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "False", "Console"]
    assert "Traceback (most recent call last)" in out.stderr
    assert "ZeroDivisionError: division by zero" in out.stderr


def _accept_fresh(url: str) -> str:
    # A connection of its own: uvicorn's workers take turns accepting on the shared socket.
    with httpx.Client(base_url=url, timeout=30) as c:
        return str(accept_entity(c).json()["job_id"])


def test_metrics_are_summed_over_serve_workers(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """`serve --workers 2` with PROMETHEUS_MULTIPROC_DIR: every scrape sums both processes."""
    log = tmp_path / "serve.log"
    route = {"route": "/one-entities-post-one", "status": "202"}
    kind = "jef_one.upsert_entity"
    with fresh_database(str(tmp_path)) as db:
        env = _env(db, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
        url = _serve(procs, env, log, "--workers", "2", "--log-format", "json")
        jobs: list[str] = []
        pids: set[int] = set()
        with ThreadPoolExecutor(8) as pool:
            while len(pids) < 2 and len(jobs) < 400:  # until both processes served some
                jobs += pool.map(_accept_fresh, [url] * 16)
                pids = {
                    x["process"]
                    for x in json_lines(log)
                    if x.get("path") == "/one-entities-post-one"
                }
        assert len(pids) == 2, pids
        with httpx.Client(base_url=url, timeout=30) as c:
            for job_id in jobs:
                assert wait_job(c, job_id)["job_status"] == "succeeded"
        n = len(jobs)
        for _ in range(8):  # whichever process answers the scrape, the sums are the same
            samples = scrape(url)
            assert value(samples, "writegate_http_request_duration_seconds_count", **route) == n
            assert value(samples, "writegate_jobs_enqueued_total", kind=kind) == n
            assert value(samples, "writegate_jobs_started_total", kind=kind) == n
            assert value(samples, "writegate_jobs_succeeded_total", kind=kind) == n


def test_a_worker_serves_metrics_and_health_on_its_port(
    bare_server: Server, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """`writegate worker --metrics-port`: /healthz 200 while running, /metrics counts its jobs."""
    port = free_port()
    env = {**os.environ, **bare_server.env}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "worker.log"
    p = spawn(["worker", "--metrics-port", str(port), "--log-format", "json"], env, log=str(log))
    procs.append(p)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> Any:
        assert p.poll() is None, log.read_text()
        try:
            r = httpx.get(f"{url}/healthz", timeout=5)
        except httpx.HTTPError:
            return None
        return r if r.status_code == 200 else None

    assert wait_for(healthy, 60, 0.2).json() == {"status": "ok", "worker": "running"}
    ids = enqueue_many(bare_server, "testkit.write", 5, {})

    def counted() -> Any:
        samples = scrape(url)
        done = value(samples, "writegate_jobs_succeeded_total", kind="testkit.write")
        return samples if done == len(ids) else None

    samples = wait_for(counted, 60, 0.2)
    assert value(samples, "writegate_jobs_started_total", kind="testkit.write") == len(ids)
    assert value(samples, "writegate_job_pickup_delay_seconds_count", kind="testkit.write") == 5
    assert has(samples, "writegate_jobs_queued", kind="testkit.write")
    assert httpx.get(f"{url}/other", timeout=5).status_code == 404
    # HEAD, as a load balancer's check sends it: the GET's status and headers, no body.
    for path, status in (("/healthz", 200), ("/metrics", 200), ("/other", 404)):
        head, get = httpx.head(f"{url}{path}", timeout=5), httpx.get(f"{url}{path}", timeout=5)
        assert (head.status_code, head.content) == (status, b""), path
        assert head.headers["content-type"] == get.headers["content-type"], path
    p.terminate()
    p.wait(30)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=5)
