"""OpenTelemetry spans: request, enqueue and job run, linked through the stored traceparent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import update

from tests.harness import Server, fresh_database, start_server, uid, wait_for
from tests.system.obskit import accept_entity, wait_job
from writegate.core.jobs import Status
from writegate.core.jobs.table import JOBS
from writegate.core.observability import tracing

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans finished in this process, kept in memory."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.disable()


@pytest.fixture(scope="module")
def traced(
    spans: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server with tracing on."""
    with fresh_database(str(tmp_path_factory.mktemp("otel"))) as url:
        server = start_server(url, modules=["jef_one", "tests.testkit"], otel=True)
        yield server
        server.stop()


def _named(spans: InMemorySpanExporter, name: str, job_id: str) -> Any:
    def find() -> Any:
        for span in spans.get_finished_spans():
            if span.name == name and span.attributes.get("writegate.job.id") == job_id:
                return span
        return None

    return wait_for(find, 30)


def test_job_span_links_to_the_request_that_enqueued_it(
    traced: Server, spans: InMemorySpanExporter
) -> None:
    """FastAPI's request span (child of the caller's traceparent) holds the enqueue span; the
    job's run links to the enqueue span."""
    rid = uid("rid-")
    headers = {"traceparent": f"00-{TRACE}-{PARENT}-01", "x-request-id": rid}
    with traced.client() as c:
        job_id = accept_entity(c, headers).json()["job_id"]
        assert wait_job(c, job_id)["job_status"] == "succeeded"
    kind = "jef_one.upsert_entity"
    enqueue = _named(spans, f"enqueue {kind}", job_id)
    run = _named(spans, f"job {kind}", job_id)
    assert f"{enqueue.context.trace_id:032x}" == TRACE
    in_trace = [
        s for s in spans.get_finished_spans() if s.context.trace_id == enqueue.context.trace_id
    ]
    request = [s for s in in_trace if s.kind == trace.SpanKind.SERVER]
    assert len(request) == 1
    assert f"{request[0].parent.span_id:016x}" == PARENT
    assert enqueue.parent.span_id in {s.context.span_id for s in in_trace}
    assert enqueue.attributes["writegate.job.written"] is True
    # The run is a trace of its own, linked to the enqueue span.
    assert run.context.trace_id != enqueue.context.trace_id
    assert [link.context.span_id for link in run.links] == [enqueue.context.span_id]
    assert run.attributes["writegate.job.attempt"] == 1
    with traced.services.db.read() as s:
        stored = traced.services.jobs.get(s, job_id).trace_context
    assert stored["request_id"] == rid
    assert stored["traceparent"] == f"00-{TRACE}-{enqueue.context.span_id:016x}-01"


def test_a_job_enqueued_outside_a_request_has_an_unlinked_run(
    traced: Server, spans: InMemorySpanExporter
) -> None:
    """No request, no span: the enqueue span is a root and the run still links to it."""
    with traced.services.db.write() as s:
        job = traced.services.jobs.enqueue(s, kind="testkit.write", payload={}, tenant="t")
    run = _named(spans, "job testkit.write", job.id)
    enqueue = _named(spans, "enqueue testkit.write", job.id)
    assert enqueue.parent is None
    assert [link.context.span_id for link in run.links] == [enqueue.context.span_id]


#: trace_context values no writegate writes, as a row another writer left might hold them
FOREIGN = ["request_id", ["request_id", "traceparent"], {"request_id": 5, "traceparent": 7}]


@pytest.mark.parametrize("origin", FOREIGN, ids=["string", "list", "numbers"])
def test_regression_a_job_whose_trace_context_is_not_ours_runs_and_settles(
    traced: Server, spans: InMemorySpanExporter, origin: Any
) -> None:
    """A threaded job (testkit) and a short one (jef-one's) run to success without a linked
    span; the threaded one's run had raised before it began, kept its handler thread's slot
    and had its lease renewed until the worker stopped."""
    worker = traced.app.state.worker
    worker.pause()  # the rows are changed before any run claims them
    try:
        with traced.services.db.write() as s:
            threaded = traced.services.jobs.enqueue(s, kind="testkit.write", payload={}, tenant="t")
        with traced.client() as c:
            short = accept_entity(c).json()["job_id"]
        with traced.services.db.write() as s:
            s.execute(
                update(JOBS).where(JOBS.c.id.in_([threaded.id, short])).values(trace_context=origin)
            )
    finally:
        worker.resume()
    with traced.client() as c:
        assert wait_job(c, short)["job_status"] == "succeeded"
    wait_for(lambda: _status(traced, threaded.id) == Status.SUCCEEDED, 30)
    for job_id, kind in ((threaded.id, "testkit.write"), (short, "jef_one.upsert_entity")):
        assert not _named(spans, f"job {kind}", job_id).links
    wait_for(lambda: not worker.running_jobs(), 30)


def _status(server: Server, job_id: str) -> Status | None:
    with server.services.db.read() as s:
        job = server.services.jobs.get(s, job_id)
    return None if job is None else job.status


NO_OTEL = """
import sys

EXTRA = ("opentelemetry.sdk", "opentelemetry.exporter")

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(EXTRA):
            raise ImportError("no module named " + name)
        return None

if {block}:
    sys.meta_path.insert(0, Missing())
from tests.harness import start_server
from tests.system.obskit import accept_entity, wait_job

server = start_server({url!r}, modules=["jef_one"], otel={otel})
with server.client() as c:
    job_id = accept_entity(c).json()["job_id"]
    assert wait_job(c, job_id)["job_status"] == "succeeded"
    assert c.get("/metrics").status_code == 200
server.stop()
loaded = sorted(m for m in sys.modules if m.startswith(EXTRA))
assert not loaded, loaded
print("ok")
"""


@pytest.mark.parametrize(
    ("block", "otel"), [(True, True), (False, False)], ids=["extra-missing", "tracing-off"]
)
def test_without_tracing_no_opentelemetry_is_imported(
    tmp_path: Any, block: bool, otel: bool
) -> None:
    """With the extra missing (even if asked for) or tracing off, neither the OpenTelemetry
    SDK nor an exporter is imported (FastAPI itself always loads the OpenTelemetry API)."""
    with fresh_database(str(tmp_path)) as url:
        script = textwrap.dedent(NO_OTEL).format(block=block, url=url, otel=otel)
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
