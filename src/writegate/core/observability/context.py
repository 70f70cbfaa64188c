"""What every log line and every enqueued job carries: request id, job id, tenant, API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from contextvars import ContextVar, Token
from typing import Any

#: the fields bound to the running request or job (one dict: one ContextVar.set per bind)
FIELDS: ContextVar[dict[str, str] | None] = ContextVar("writegate_log_fields", default=None)


def bind(**fields: str) -> Token[dict[str, str] | None]:
    """Add fields to the current context; undo with `unbind(token)`."""
    current = FIELDS.get()
    return FIELDS.set({**current, **fields} if current else fields)


def unbind(token: Token[dict[str, str] | None]) -> None:
    """Restore the fields as they were before the `bind` that gave `token`."""
    FIELDS.reset(token)


@contextlib.contextmanager
def bound(**fields: str) -> Iterator[None]:
    """Fields bound for the duration of a block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def request_id() -> str | None:
    """The id of the request being served, if any."""
    current = FIELDS.get()
    return current.get("request_id") if current else None


def merge(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: add the bound fields to a log line (its own keys win)."""
    current = FIELDS.get()
    if current:
        for key, value in current.items():
            event.setdefault(key, value)
    return event


def job_origin() -> dict[str, str] | None:
    """What a job enqueued now keeps of its origin: the request id and W3C traceparent."""
    from writegate.core.observability import tracing

    rid = request_id()
    parent = tracing.traceparent() if tracing.enabled() else None
    if rid is None and parent is None:
        return None
    origin = {"request_id": rid} if rid is not None else {}
    if parent is not None:
        origin["traceparent"] = parent
    return origin


def job_fields(job: Any) -> dict[str, str]:
    """The log fields of a running job: job_id, tenant, api (its kind's module), request_id."""
    fields = {"job_id": job.id, "tenant": job.tenant, "api": job.kind.partition(".")[0]}
    origin = job.trace_context
    # The column is JSON any writer may have filled: a value that is not ours is left out.
    request = origin.get("request_id") if isinstance(origin, dict) else None
    if isinstance(request, str):
        fields["request_id"] = request
    return fields
