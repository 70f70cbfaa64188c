"""HTTP helpers shared by every module: services, route registration, credentials, a fast JSON
route, errors."""

from __future__ import annotations

import copy
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, request_response
from pydantic import BaseModel, ValidationError
from starlette.routing import Route

from writegate.core.auth import Principal
from writegate.core.observability.context import bind
from writegate.core.principals import hash_key
from writegate.core.problems import FieldProblem
from writegate.core.services import Services


def services_of(request: Request) -> Services:
    """The process's Services, set on app.state at start-up."""
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    """`services_of` as a dependency (async: a sync one costs a thread-pool hop per request)."""
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


def is_json(content_type: str) -> bool:
    """Whether a content type is JSON as FastAPI reads a body: application/json or
    application/*+json, in any case, with any parameters."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def not_json(content_type: str) -> str:
    """The message refusing a body sent as content_type (or with none)."""
    got = repr(content_type[:100]) if content_type else "no content type"
    return f"expected application/json, got {got}"


def add_routes(app: FastAPI, router: APIRouter, *, any_case: bool = False) -> None:
    """Make copies of router's routes the app's own, in their order (writegate's
    `include_router`); with `any_case`, their paths match in any letter case (path parameters
    keep theirs).

    FastAPI's `include_router` keeps a router as one nested route that each request walks
    twice (to match, then to handle), and every nested route asked costs a match of each of
    its routes; writegate includes its routers with nothing an inclusion adds (no prefix or
    dependencies), so their routes can be the app's own. That halves the lookup: `python -m
    bench.route_probe`. As with `include_router`, `app.dependency_overrides` applies to them,
    and a router added to two apps answers in each with that app's overrides.
    """
    for route in router.routes:
        own = copy.copy(route)
        if any_case and isinstance(own, Route):
            own.path_regex = re.compile(own.path_regex.pattern, re.IGNORECASE)
        if isinstance(own, APIRoute):
            if own.max_body_size is not None:
                raise ValueError(f"{own.path}: writegate's BodyLimit middleware limits bodies")
            # A route's handler reads its provider when it is built: build it again.
            own.dependency_overrides_provider = app
            own.app = request_response(own.get_route_handler())
        app.router.routes.append(own)
    app.openapi_schema = None  # a document made before now lacks these routes


class JsonBodyRoute(APIRoute):
    """An APIRoute with a fast path for endpoints of a JSON body and request-only dependencies.

    The endpoint takes one body model and dependencies (`ServicesDep`, a principal...) that
    are async functions of the request and of other such dependencies, and returns a
    Response. A request with a JSON content type whose body validates goes straight to the
    endpoint (`Model.model_validate_json`, each dependency awaited once in FastAPI's order,
    without FastAPI's general solving); anything else - another content type, bad JSON, a
    validation error - takes FastAPI's own path, so errors, their envelopes and the OpenAPI
    document are exactly those of a plain route. A dependency's exception propagates as it
    would from FastAPI's solving. While the app overrides any dependency
    (`app.dependency_overrides`, as tests do), every request takes FastAPI's path.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, behind the fast path when the endpoint's shape allows it."""
        slow = _utf8_only(super().get_route_handler())
        fast = self.direct_call()
        if fast is None:
            return slow
        call, model = fast
        provider = self.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            overridden = provider is not None and provider.dependency_overrides
            if not overridden and is_json(request.headers.get("content-type", "")):
                try:
                    body = model.model_validate_json(await request.body())
                except ValidationError:
                    return await slow(request)  # the body is cached on the request
                response: Response = await call(request, body)
                return response
            return await slow(request)

        return handler

    def direct_call(
        self,
    ) -> tuple[Callable[[Request, BaseModel], Awaitable[Any]], type[BaseModel]] | None:
        """(endpoint(request, body), body model) if the endpoint can skip FastAPI, else None."""
        dep = self.dependant
        if (
            len(dep.body_params) != 1
            or dep.request_param_name
            or not _request_only(dep)
            or not inspect.iscoroutinefunction(self.endpoint)
        ):
            return None
        model = dep.body_params[0].field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        # The fast path hands the endpoint's return value to the server as it is, so only an
        # endpoint that returns a Response itself (no response_model serialization) may use it.
        try:
            returns = typing.get_type_hints(self.endpoint).get("return")
        except Exception:
            return None
        if not (isinstance(returns, type) and issubclass(returns, Response)):
            return None
        body_name = str(dep.body_params[0].name)
        endpoint, dependencies = self.endpoint, dep.dependencies

        async def call(request: Request, body: BaseModel) -> Any:
            values = await _solve(dependencies, request, {})
            return await endpoint(**values, **{body_name: body})

        return call, model


def _utf8_only(
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """handler, with a JSON body that is not UTF-8 refused as malformed JSON.

    RFC 8259 allows only UTF-8 between systems, and each API documents a non-UTF-8 body as
    malformed; Starlette's `json.loads` of the bytes would read UTF-16 and UTF-32 too (by a
    byte-order mark, or by NULs in the first four bytes, as `json.detect_encoding` does).
    """

    async def checked(request: Request) -> Response:
        if is_json(request.headers.get("content-type", "")):
            raw = await request.body()
            try:
                raw.decode("utf-8")
                utf8 = b"\x00" not in raw[:4]
            except UnicodeDecodeError:
                utf8 = False
            if not utf8:
                error = {"error": "the body is not UTF-8"}
                problem = {"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}
                raise RequestValidationError([{**problem, "input": {}, "ctx": error}])
        return await handler(request)

    return checked


def _request_only(dep: Dependant) -> bool:
    """Whether dep's dependencies, all the way down, are async functions of the request."""
    for sub in dep.dependencies:
        if sub.body_params or not inspect.iscoroutinefunction(sub.call) or not _request_only(sub):
            return False
    return not (
        dep.path_params
        or dep.query_params
        or dep.header_params
        or dep.cookie_params
        or dep.websocket_param_name
        or dep.http_connection_param_name
        or dep.response_param_name
        or dep.background_tasks_param_name
        or dep.security_scopes_param_name
        or dep.own_oauth_scopes
    )


async def _solve(deps: list[Dependant], request: Request, done: dict[Any, Any]) -> dict[str, Any]:
    """Each dependency's value by its parameter name (a router's unnamed ones only run); one
    call per function and request, as FastAPI caches them."""
    values: dict[str, Any] = {}
    for sub in deps:
        call = sub.call
        assert call is not None
        if not (sub.use_cache and call in done):
            kwargs = await _solve(sub.dependencies, request, done)
            if sub.request_param_name:
                kwargs[sub.request_param_name] = request
            done[call] = await call(**kwargs)
        if sub.name is not None:
            values[sub.name] = done[call]
    return values


#: OpenAPI's names for the two ways `credentials` reads an API key (FastAPI's own names)
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "HTTPBearer": {"type": "http", "scheme": "bearer"},
}
#: `openapi_extra` of an operation that takes an API key: documented, never run per request
#: (FastAPI's security dependencies for the same document cost ~10% of a request's CPU)
API_KEY_DOC: dict[str, Any] = {"security": [{name: []} for name in SECURITY_SCHEMES]}


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


async def authenticate(request: Request) -> Principal | None:
    """The principal behind the request's API key; None if absent, unknown or revoked.

    Known keys are answered from the process's `PrincipalCache` (no database round trip),
    others on the async read path; a revocation reaches every process within the cache's
    time to live.
    """
    key = credentials(request)
    if key is None or len(key) > 512:
        return None
    services = services_of(request)
    digest = hash_key(key)
    cached = services.principals.get(digest)
    if cached is not None:
        bind(tenant=cached.tenant)
        return cached
    principal = await services.auth.by_api_key_read(key)
    if principal is not None:
        services.principals.put(digest, principal)
        bind(tenant=principal.tenant)
    return principal


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
        # A validator's ValueError reads "Value error, <its text>": the client gets its text.
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        out.append(
            FieldProblem(field=".".join(loc), code=str(err.get("type", "invalid")), message=msg)
        )
    return tuple(out)
