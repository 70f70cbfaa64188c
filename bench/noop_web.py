"""The bench module's web side: its accept endpoints, shaped like jef-one's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bench.schemas import CreateSession, accepted
from writegate.core.db import BatchWrite
from writegate.core.http import ErrorInfo, JsonBodyRoute, ServicesDep
from writegate.core.services import Services
from writegate.core.webmodule import WebModule


def render_error(request: Request, info: ErrorInfo) -> Response:
    """jef-one's error envelope."""
    from fastapi.responses import JSONResponse

    return JSONResponse(
        {
            "is_accepted": False,
            "message": info.message,
            "error_type": info.kind,
            "error_code": info.kind.upper(),
            "errors": [f.__dict__ for f in info.fields],
            "error": info.message,
        },
        status_code=info.status,
    )


def web(
    services: Services, accepts: BatchWrite, job_kwargs: Callable[[CreateSession], dict[str, Any]]
) -> WebModule:
    """The accept endpoints: group commit, one commit per request, and no database."""
    router = APIRouter(route_class=JsonBodyRoute)

    @router.post("/bench/one-post-create-session-job", status_code=202)
    async def create_session(body: CreateSession, svc: ServicesDep) -> JSONResponse:
        """Accept with group commit: answered once the shared COMMIT is durable."""
        job = await svc.db.group.run_many(accepts, body)
        return JSONResponse(accepted(job.id, body.session_id), status_code=202)

    @router.post("/bench/nodb/one-post-create-session-job", status_code=202)
    async def create_session_nodb(body: CreateSession, svc: ServicesDep) -> JSONResponse:
        """The same request through writegate's app, writing nothing (splits app vs DB cost)."""
        return JSONResponse(accepted(str(uuid.uuid4()), body.session_id), status_code=202)

    @router.post("/bench/single/one-post-create-session-job", status_code=202)
    async def create_session_single(body: CreateSession, svc: ServicesDep) -> JSONResponse:
        """Accept with one transaction (one fsync) per request, in a worker thread."""

        def write() -> str:
            with svc.db.write() as s:
                return svc.jobs.enqueue(s, **job_kwargs(body)).id

        job_id = await asyncio.to_thread(write)
        return JSONResponse(accepted(job_id, body.session_id), status_code=202)

    return WebModule(name="bench", router=router, prefixes=("/bench/",), render_error=render_error)
