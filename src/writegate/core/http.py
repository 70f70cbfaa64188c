"""HTTP helpers shared by every module: services access, credentials, error descriptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from writegate.core.auth import Principal
from writegate.core.services import Services


def get_services(request: Request) -> Services:
    """The process's Services, set on app.state at start-up."""
    services: Services = request.app.state.services
    return services


async def _services_dependency(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in a worker thread, so every request of
    # an async endpoint would otherwise take a thread (and its stack and malloc arena).
    return get_services(request)


ServicesDep = Annotated[Services, Depends(_services_dependency)]


def credentials(request: Request) -> str | None:
    """The API key from `x-api-key` or `Authorization: Bearer`, if any."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(request: Request) -> Principal | None:
    """The principal behind the request's API key; None if absent, unknown or revoked."""
    key = credentials(request)
    if key is None or len(key) > 512:
        return None
    services = get_services(request)
    with services.db.read() as session:
        return services.auth.by_api_key(session, key)


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one input field."""

    #: dotted path of the field ("" for the body as a whole)
    field: str
    #: machine code, e.g. "missing", "extra_forbidden", "string_type", "string_pattern_mismatch"
    code: str
    message: str


@dataclass(frozen=True)
class ErrorInfo:
    """A request failure, described independently of any API's envelope."""

    #: the HTTP status a generic API would use (400, 401, 403, 404, 405, 413, 415, 500, 503)
    status: int
    #: "validation", "malformed", "content_type", "too_large", "not_found",
    #: "method_not_allowed", "unauthorized", "forbidden", "unavailable", "internal"
    kind: str
    message: str
    fields: tuple[FieldProblem, ...] = field(default_factory=tuple)


def field_problems(errors: Any) -> tuple[FieldProblem, ...]:
    """Turn Pydantic/FastAPI error dicts into FieldProblems (dropping the 'body' prefix)."""
    out: list[FieldProblem] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        msg = str(err.get("msg", "invalid value"))
        out.append(
            FieldProblem(field=".".join(loc), code=str(err.get("type", "invalid")), message=msg)
        )
    return tuple(out)
