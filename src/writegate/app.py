"""Builds the ASGI app: core routes, every module's router, one error dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from writegate.console import install as install_console
from writegate.core.http import (
    SECURITY_SCHEMES,
    ErrorInfo,
    add_routes,
    field_problems,
    is_json,
    not_json,
)
from writegate.core.middleware import BodyLimit
from writegate.core.module import Module
from writegate.core.observability import metrics, tracing
from writegate.core.observability.middleware import ObserveRequests
from writegate.core.observability.probes import Readiness, router
from writegate.core.observability.queue import QueueCollector
from writegate.core.problems import FieldProblem
from writegate.core.services import Services
from writegate.core.webmodule import WebModule
from writegate.core.worker import Worker
from writegate.settings import Settings
from writegate.startup import (
    import_module,
    load_modules,
    maintenance,
    migrate,
    migration_dirs,
    tuned_garbage_collector,
)

log = logging.getLogger("writegate.app")


def load_web(services: Services) -> list[WebModule]:
    """Build every enabled module's web side (after its job side, which may set extras)."""
    return [import_module(name).create_web(services) for name in services.settings.modules]


def owner_of(modules: list[WebModule], path: str) -> WebModule | None:
    """The module a request path belongs to (its error envelope, its metrics label), if any."""
    return next((m for m in modules if m.owns(path)), None)


def api_of(modules: list[WebModule]) -> Callable[[str], str]:
    """The API (module name) a request path belongs to; "core" for the rest."""

    def api(path: str) -> str:
        owner = owner_of(modules, path)
        return "core" if owner is None else owner.name

    return api


def _generic_error(info: ErrorInfo) -> Response:
    return JSONResponse(
        {
            "error": info.kind,
            "message": info.message,
            "fields": [f.__dict__ for f in info.fields],
        },
        status_code=info.status,
    )


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The writegate ASGI application."""
    settings = settings or (services.settings if services else Settings())
    services = services or Services.build(settings)
    job_sides = load_modules(services)
    modules = load_web(services)
    tracing.setup_tracing(settings.otel)

    def render(request: Request, info: ErrorInfo) -> Response:
        owner = owner_of(modules, request.url.path)
        return _generic_error(info) if owner is None else owner.render_error(request, info)

    app = FastAPI(
        title="writegate",
        version=importlib.import_module("writegate").__version__,
        description="Four documented write APIs on one durable job core.",
        lifespan=_lifespan(settings, services, job_sides),
        # FastAPI's own request spans, only when writegate's tracing is on (WRITEGATE_OTEL);
        # its metrics and logs go to Prometheus and structlog instead.
        telemetry={"tracing": tracing.enabled(), "metrics": False, "logs": False},
        # Each API's paths are exactly its documented ones: another spelling (a trailing
        # slash) is an unknown path in that API's envelope, not an empty 307 to a Location
        # built from the request's Host header.
        redirect_slashes=False,
    )
    app.state.services = services
    app.state.modules = modules
    app.state.job_sides = job_sides
    _install_error_handlers(app, render)
    _install_probes(app, services, settings)
    for m in modules:
        add_routes(app, m.router, any_case=m.any_case)
        for exc_class, handler in m.exception_handlers.items():
            app.add_exception_handler(exc_class, handler)
    install_console(app, services)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout_seconds,
        render=render,
    )
    # Outside BodyLimit: its 408 and 413 answers carry the request id and are counted too.
    app.add_middleware(ObserveRequests, api_of=api_of(modules))
    _shape_openapi(app)
    return app


def _lifespan(
    settings: Settings, services: Services, job_sides: list[Module]
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Start-up and shut-down: migrations, the embedded worker and housekeeping."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            migrate(services)
        services.db.attach_loop(asyncio.get_running_loop())
        worker = None
        if settings.embedded_worker:
            worker = Worker(
                services.jobs,
                services.registry,
                concurrency=settings.worker_concurrency,
                poll_interval=settings.worker_poll_interval,
                reaper_interval=settings.reaper_interval,
                wakeup=services.wakeup,
            )
            worker.start()
        housekeeping = maintenance(services, job_sides) if settings.embedded_worker else None
        if housekeeping is not None:
            housekeeping.start()
        app.state.worker = worker
        app.state.maintenance = housekeeping
        # Python's 5 ms default lets a busy event loop keep the GIL that long from a commit
        # thread back from its fsync, or from the embedded worker woken by a new job.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        try:
            with tuned_garbage_collector(settings.gc_young_threshold):
                yield
        finally:
            sys.setswitchinterval(switch_interval)
            # On a thread: these wait (joins, the grace) and write (a hand-back's commit),
            # and the event loop commits its own callers' batches meanwhile (on SQLite a
            # write from its thread would wait for the writer its batches may hold).
            if housekeeping is not None:
                await asyncio.to_thread(housekeeping.stop)
            if worker is not None:
                await asyncio.to_thread(worker.stop, grace=settings.shutdown_grace_seconds)
            await services.aclose()
            metrics.mark_process_dead()

    return lifespan


#: the error kind of each HTTP status the framework raises
_HTTP_KINDS = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "content_type",
}


def _install_error_handlers(app: FastAPI, render: Callable[[Request, ErrorInfo], Response]) -> None:
    """Every framework and database error, rendered in the envelope of the API it hit: a
    table of short handlers, one closure each."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        ctype = request.headers.get("content-type", "")
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid")
            msg = f"malformed JSON: {detail.get('ctx', {}).get('error', 'invalid JSON')}"
            info = ErrorInfo(400, "malformed", msg, (FieldProblem("", "json_invalid", msg),))
        elif (
            request.method in ("POST", "PUT", "PATCH")
            and not is_json(ctype)
            and (ctype or await request.body())
        ):
            info = ErrorInfo(415, "content_type", not_json(ctype))
        else:
            problems = field_problems(errors)
            info = ErrorInfo(400, "validation", "invalid request", problems)
        return render(request, info)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        fallback = "internal" if exc.status_code >= 500 else "malformed"
        kind = _HTTP_KINDS.get(exc.status_code, fallback)
        message = str(exc.detail)
        if exc.status_code == 400:  # FastAPI's: a body its json.loads could not read
            message = f"malformed request body: {_unreadable(exc.__cause__)}"
        resp = render(request, ErrorInfo(exc.status_code, kind, message))
        if resp.status_code == 405:
            resp.headers["allow"] = _allowed(request)
        return resp

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _db_down(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", exc)
        resp = render(
            request,
            ErrorInfo(503, "unavailable", "database temporarily unavailable; retry later"),
        )
        resp.headers["retry-after"] = "1"
        return resp

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: Exception) -> Response:
        # The database refused a value (e.g. a NUL character PostgreSQL cannot store): the
        # input is at fault, so retrying would never help - not a 503.
        log.info("database refused a value: %s", getattr(exc, "orig", exc))
        message = "a value contains characters or a size the database cannot store"
        return render(request, ErrorInfo(400, "validation", message))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        resp = render(request, ErrorInfo(500, "internal", "internal error"))
        # The server closes the connection after an unhandled error; say so, or a keep-alive
        # client sends its next request into a closed socket.
        resp.headers["connection"] = "close"
        return resp


def _allowed(request: Request) -> str:
    """A 405's Allow: the methods of every route at the request's path (Starlette's own names
    only the first route's, where a path has a GET route and a POST route)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _unreadable(cause: BaseException | None) -> str:
    """Why a JSON body could not be read, in a client's words."""
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        # Python reads at most this many digits of an integer (a guard against a quadratic
        # parse): a number that long is out of every field's range anyway.
        return f"a number has more than {sys.get_int_max_str_digits()} digits"
    return "not valid JSON or not UTF-8"


def _install_probes(app: FastAPI, services: Services, settings: Settings) -> None:
    """GET (and HEAD) /healthz, /livez, /readyz and /metrics."""

    @app.get("/healthz", operation_id="healthz", tags=["core"])
    def healthz() -> dict[str, Any]:
        """Liveness and database reachability."""
        with services.db.read() as s:
            s.execute(text("SELECT 1"))
        return {"status": "ok", "database": services.db.engine.dialect.name}

    # HEAD, as load balancers' checks send it: the GET's answer without its body.
    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)

    def worker_state() -> str:
        worker: Worker | None = getattr(app.state, "worker", None)
        return worker.state if worker is not None else "off"

    readiness = Readiness(services.db, migration_dirs(settings), worker_state)
    queue = QueueCollector(services.db, services.clock, services.registry.kinds)
    add_routes(app, router(readiness, metrics.registry(queue)))


def _shape_openapi(app: FastAPI) -> None:
    """The OpenAPI document without FastAPI's generic 422 (no writegate API ever sends it),
    and with the API-key schemes its operations name in their `security` declared."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            named: set[str] = set()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    if isinstance(operation, dict):
                        operation.get("responses", {}).pop("422", None)
                        named.update(k for s in operation.get("security", ()) for k in s)
            if named & SECURITY_SCHEMES.keys():
                schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
                for name in sorted(named & SECURITY_SCHEMES.keys()):
                    schemes.setdefault(name, SECURITY_SCHEMES[name])
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
