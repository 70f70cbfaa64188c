"""Builds the ASGI app: core routes, every module's router, one error dispatcher."""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from writegate.console import install as install_console
from writegate.core.http import DirectJsonRoutes, ErrorInfo, FieldProblem, field_problems
from writegate.core.maintenance import Maintenance, Task
from writegate.core.migrations import upgrade
from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.worker import Worker
from writegate.settings import Settings

log = logging.getLogger("writegate.app")


def load_modules(services: Services) -> list[Module]:
    """Import and build every enabled module, registering its job kinds."""
    modules = []
    for name in services.settings.modules:
        # A dotted name loads an out-of-tree module (benchmarks, test-only job kinds).
        mod = importlib.import_module(name if "." in name else f"writegate.modules.{name}")
        module: Module = mod.create(services)
        for spec in module.jobs:
            services.registry.add(spec)
        modules.append(module)
    return modules


def maintenance(services: Services, modules: list[Module]) -> Maintenance:
    """The housekeeping every worker process runs: the core's and each module's."""
    tasks: list[tuple[str, Task]] = [("core.expired_tokens", services.purge_expired_tokens)]
    for m in modules:
        tasks += m.maintenance
    return Maintenance(tasks, services.settings.maintenance_interval)


def migration_dirs(settings: Settings) -> list[Path]:
    """The core's and every bundled module's Alembic version directories.

    All of them, enabled or not: a database migrated by a process with more modules must
    still be readable by one with fewer.
    """
    root = Path(__file__).parent
    dirs = [root / "migrations" / "versions"]
    dirs += sorted(d for d in (root / "modules").glob("*/migrations") if d.is_dir())
    return dirs


def migrate(services: Services) -> None:
    """Bring the schema up to date (idempotent, safe with several processes)."""
    upgrade(services.db, migration_dirs(services.settings))


def freeze_startup_objects() -> None:
    """Move everything built so far out of the garbage collector's generations."""
    # Routes, schemas and mappers live as long as the process: a full collection under load
    # then walks only what requests allocate, not the whole start-up heap (long pauses).
    gc.collect()
    gc.freeze()


def _generic_error(info: ErrorInfo) -> Response:
    return JSONResponse(
        {
            "error": info.kind,
            "message": info.message,
            "fields": [f.__dict__ for f in info.fields],
        },
        status_code=info.status,
    )


class BodyLimit:
    """Refuse bodies over the limit before any handler runs (pure ASGI, buffers up to it)."""

    def __init__(self, app: ASGIApp, max_bytes: int, render: Any) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = True
        chunks: list[bytes] = []
        size = 0
        if not too_large:
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    too_large = True
                    break
                chunks.append(chunk)
                more = message.get("more_body", False)
        if too_large:
            request = Request(scope)
            info = ErrorInfo(413, "too_large", f"request body exceeds {self.max_bytes} bytes")
            response = self.render(request, info)
            response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The writegate ASGI application."""
    settings = settings or (services.settings if services else Settings())
    services = services or Services.build(settings)
    modules = load_modules(services)

    def render(request: Request, info: ErrorInfo) -> Response:
        path = request.url.path
        for m in modules:
            if m.owns(path):
                return m.render_error(request, info)
        return _generic_error(info)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            migrate(services)
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
        housekeeping = maintenance(services, modules) if settings.embedded_worker else None
        if housekeeping is not None:
            housekeeping.start()
        app.state.worker = worker
        app.state.maintenance = housekeeping
        freeze_startup_objects()
        # Python's 5 ms default lets a busy event loop keep the GIL that long from a commit
        # thread back from its fsync, or from the embedded worker woken by a new job.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        try:
            yield
        finally:
            sys.setswitchinterval(switch_interval)
            if housekeeping is not None:
                housekeeping.stop()
            if worker is not None:
                worker.stop()
            for m in modules:
                for cb in m.on_shutdown:
                    cb()
            services.close()

    app = FastAPI(
        title="writegate",
        version=importlib.import_module("writegate").__version__,
        description="Four documented write APIs on one durable job core.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.modules = modules

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        ctype = request.headers.get("content-type", "")
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid")
            msg = f"malformed JSON: {detail.get('ctx', {}).get('error', 'invalid JSON')}"
            info = ErrorInfo(400, "malformed", msg, (FieldProblem("", "json_invalid", msg),))
        elif request.method in ("POST", "PUT", "PATCH") and ctype and "json" not in ctype.lower():
            info = ErrorInfo(415, "content_type", f"expected application/json, got {ctype[:100]!r}")
        else:
            problems = field_problems(errors)
            info = ErrorInfo(400, "validation", "invalid request", problems)
        return render(request, info)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kinds = {
            400: "malformed",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            415: "content_type",
        }
        kind = kinds.get(exc.status_code, "internal" if exc.status_code >= 500 else "malformed")
        message = str(exc.detail)
        if exc.status_code == 400:
            message = "malformed request body: not valid JSON or not UTF-8"
        return render(request, ErrorInfo(exc.status_code, kind, message))

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
        return render(request, ErrorInfo(500, "internal", "internal error"))

    @app.get("/healthz", operation_id="healthz", tags=["core"])
    def healthz() -> dict[str, Any]:
        """Liveness and database reachability."""
        with services.db.read() as s:
            s.execute(text("SELECT 1"))
        return {"status": "ok", "database": services.db.engine.dialect.name}

    for m in modules:
        app.include_router(m.router)
        for exc_class, handler in m.exception_handlers.items():
            app.add_exception_handler(exc_class, handler)

    install_console(app, services)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, render=render)
    _without_framework_422(app)
    if settings.direct_routes:
        _with_direct_routes(app, settings.max_body_bytes, modules)
    return app


def _with_direct_routes(app: FastAPI, max_bytes: int, modules: list[Module]) -> None:
    """Put `DirectJsonRoutes` in front of the middleware stack (built on the first request)."""
    build = app.build_middleware_stack

    def build_with_direct_routes() -> ASGIApp:
        stack = build()
        # The direct layer skips every middleware, so it is only safe while the body limit
        # (which it enforces itself) is the only one: a middleware added later turns it off.
        if [m.cls for m in app.user_middleware] != [cast(Any, BodyLimit)]:
            return stack
        # Every route that could answer a path: the app's own and each module's (the app's
        # list holds the module routers only as wrappers).
        own = [r for r in app.routes if isinstance(r, Route | Mount | WebSocketRoute | Host)]
        routes: list[BaseRoute] = [*own, *(r for m in modules for r in m.router.routes)]
        return DirectJsonRoutes(stack, app, max_bytes, routes)

    app.build_middleware_stack = build_with_direct_routes  # type: ignore[method-assign]


def _without_framework_422(app: FastAPI) -> None:
    """Drop FastAPI's generic 422 from the OpenAPI document: no writegate API ever sends it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    if isinstance(operation, dict):
                        operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
