"""A test-only module (loaded by dotted path) whose job can outlive its own attempt.

`faultkit.stale` records its effect like testkit's jobs do, but its first attempt blocks
until the job has been taken over by a later attempt: the case of a hung handler that
comes back to life after its lease (or timeout) was given to someone else.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import insert, select

from tests.testkit import effects, metadata
from writegate.core.http import ErrorInfo
from writegate.core.jobs import JobRow
from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.webmodule import WebModule
from writegate.core.worker import JobContext, JobSpec


def _stale(ctx: JobContext) -> dict[str, Any]:
    if ctx.job.attempts == 1:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with ctx.manager.db.read() as s:
                attempts = s.scalar(select(JobRow.attempts).where(JobRow.id == ctx.job.id))
            if attempts and attempts > 1:
                break
            time.sleep(0.05)
    else:
        # The later attempt is slower, so the stale one reaches its commit first.
        time.sleep(float(ctx.payload.get("later_sleep", 2)))
    ctx.session.execute(
        insert(effects).values(
            job_id=ctx.job.id, attempt=ctx.job.attempts, worker=ctx.worker_id, at=ctx.clock.now()
        )
    )
    return {"attempt": ctx.job.attempts}


def _render(_request: Request, info: ErrorInfo) -> Response:
    return JSONResponse({"faultkit_error": info.kind}, status_code=info.status)


def create(services: Services) -> Module:
    """Register the faultkit job kind (effects go to the testkit table)."""
    metadata.create_all(services.db.write_engine)
    return Module(name="faultkit", jobs=[JobSpec("faultkit.stale", _stale)])


def create_web(services: Services) -> WebModule:
    """The faultkit routes and error envelope."""
    return WebModule(
        name="faultkit",
        router=APIRouter(),
        prefixes=("/faultkit/",),
        render_error=_render,
    )
