"""OpenTelemetry spans for enqueues and job runs (the optional `otel` extra).

Request spans are FastAPI's own (its built-in telemetry, switched on by `create_app` when
tracing is on). FastAPI always loads the OpenTelemetry API; nothing here imports the SDK or
an exporter until `setup_tracing(True)`, and while tracing is off every helper is a no-op
costing one attribute read.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger("writegate.tracing")

#: the writegate tracer once tracing is on (an opentelemetry.trace.Tracer), else None
_tracer: Any = None
_propagator: Any = None


def enabled() -> bool:
    """Whether spans are being made."""
    return _tracer is not None


def setup_tracing(enabled: bool) -> bool:
    """Turn tracing on (if `enabled` and the `otel` extra is installed); whether it is on.

    A tracer provider the process already set (an SDK one: tests, `opentelemetry-instrument`)
    is used as it is; otherwise an SDK provider exporting over OTLP/HTTP (configured by the
    standard OTEL_EXPORTER_OTLP_* variables) is installed.
    """
    global _tracer, _propagator
    if not enabled or _tracer is not None:
        return _tracer is not None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        log.warning("tracing requested but OpenTelemetry is missing: pip install 'writegate[otel]'")
        return False
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "writegate"}
        provider = TracerProvider(resource=Resource.create(named))
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("no OTLP exporter installed: spans are made but not exported")
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("writegate")
    _propagator = TraceContextTextMapPropagator()
    return True


def disable() -> None:
    """Stop making spans (the provider stays installed)."""
    global _tracer
    _tracer = None


def traceparent() -> str | None:
    """The W3C traceparent of the current span, if tracing is on and a span is current."""
    if _propagator is None or _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _context_of(origin: Mapping[str, str] | None) -> Any:
    parent = origin.get("traceparent") if isinstance(origin, Mapping) else None
    if not isinstance(parent, str):  # none, or a value some other writer left
        return None
    return _propagator.extract({"traceparent": parent})


def start_enqueue_spans(rows: list[dict[str, Any]]) -> list[Any]:
    """One span per new job row, each a child of the context its job was submitted in.

    Each row's `trace_context` then names its enqueue span, which the job's run links to.
    """
    if _tracer is None:
        return []
    from opentelemetry import trace

    spans = []
    for row in rows:
        origin = row["trace_context"]
        attributes = {"writegate.job.id": row["id"], "writegate.job.kind": row["kind"]}
        span = _tracer.start_span(
            f"enqueue {row['kind']}", context=_context_of(origin), attributes=attributes
        )
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, context=trace.set_span_in_context(span))
        row["trace_context"] = {**(origin or {}), **carrier}
        spans.append(span)
    return spans


def end_enqueue_spans(spans: list[Any], written: set[str]) -> None:
    """End the enqueue spans, noting which rows were written (not refused)."""
    for span in spans:
        span.set_attribute("writegate.job.written", span.attributes["writegate.job.id"] in written)
        span.end()


@contextlib.contextmanager
def job_span(
    job_id: str, kind: str, attempt: int, origin: Mapping[str, str] | None
) -> Iterator[Any]:
    """A span for one run of a job, linked to the span that enqueued it."""
    if _tracer is None:
        yield None
        return
    from opentelemetry import trace

    links = []
    parent = _context_of(origin)
    if parent is not None:
        context = trace.get_current_span(parent).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    attributes = {
        "writegate.job.id": job_id,
        "writegate.job.kind": kind,
        "writegate.job.attempt": attempt,
    }
    with _tracer.start_as_current_span(
        f"job {kind}",
        context=trace.set_span_in_context(trace.INVALID_SPAN),
        links=links,
        attributes=attributes,
    ) as span:
        yield span


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, hex, if tracing is on and one is recording."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
