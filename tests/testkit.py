"""A test-only module (loaded by dotted path) whose jobs record their effects in a table.

The effects table has no unique constraint on purpose: a job that ran twice shows up as
two rows, which is how the system tests prove exactly-once execution.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert

from writegate.core.exceptions import PermanentJobError
from writegate.core.http import ErrorInfo, JsonBodyRoute, ServicesDep
from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.webmodule import WebModule
from writegate.core.worker import JobContext, JobSpec

metadata = MetaData()
effects = Table(
    "testkit_effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(36), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(100), nullable=False),
    Column("at", DateTime, nullable=False),
)


def _write(ctx: JobContext) -> dict[str, Any]:
    ctx.session.execute(
        insert(effects).values(
            job_id=ctx.job.id, attempt=ctx.job.attempts, worker=ctx.worker_id, at=ctx.clock.now()
        )
    )
    # Sleeping after the write but before the commit puts a SIGKILL in mid-transaction.
    if ctx.job.attempts <= int(ctx.payload.get("sleep_attempts", 1_000)):
        time.sleep(float(ctx.payload.get("sleep", 0)))
    return {"attempt": ctx.job.attempts}


def _flaky(ctx: JobContext) -> dict[str, Any]:
    if ctx.job.attempts < int(ctx.payload["succeed_on"]):
        raise RuntimeError(f"transient failure on attempt {ctx.job.attempts}")
    return _write(ctx)


def _broken(ctx: JobContext) -> None:
    if ctx.payload.get("permanent"):
        raise PermanentJobError("bad data: cannot ever succeed")
    raise RuntimeError("always fails")


def _long(ctx: JobContext) -> dict[str, Any]:
    for step in range(int(ctx.payload["steps"])):
        time.sleep(float(ctx.payload["pause"]))
        ctx.step(lambda s, done=step + 1: ctx.save(s, progress={"step": done}))
    return _write(ctx)


def _clash(ctx: JobContext) -> None:
    """Write one row twice: the database refuses the second (its id is taken)."""
    row = {
        "id": int(ctx.payload["id"]),
        "job_id": ctx.job.id,
        "attempt": ctx.job.attempts,
        "worker": ctx.payload["worker"],
        "at": ctx.clock.now(),
    }
    ctx.session.execute(insert(effects).values(row))
    ctx.session.execute(insert(effects).values(row))


def _hang(ctx: JobContext) -> None:
    time.sleep(float(ctx.payload.get("sleep", 3600)))


class DirectBody(BaseModel):
    """The body of `POST /testkit/direct`: what the endpoint should do."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["ok", "refuse", "crash"]
    note: str = ""


class Refused(Exception):
    """A refusal the testkit renders with its own handler."""


router = APIRouter(route_class=JsonBodyRoute)


@router.post("/testkit/direct", status_code=201)
async def direct(body: DirectBody, services: ServicesDep) -> JSONResponse:
    """Echo, refuse or crash, as the body asks (a JsonBodyRoute with its fast path)."""
    if body.mode == "refuse":
        raise Refused(body.note)
    if body.mode == "crash":
        raise RuntimeError(f"testkit crash: {body.note}")
    return JSONResponse({"echo": body.note, "tenant_db": services.db.engine.dialect.name}, 201)


def _refused(_request: Request, exc: Refused) -> Response:
    return JSONResponse({"refused": str(exc)}, status_code=409, headers={"x-refused": "1"})


def _render(_request: Request, info: ErrorInfo) -> Response:
    return JSONResponse({"testkit_error": info.kind}, status_code=info.status)


def create(services: Services) -> Module:
    """Register the testkit job kinds and create the effects table."""
    metadata.create_all(services.db.write_engine)
    return Module(
        name="testkit",
        jobs=[
            JobSpec("testkit.write", _write),
            JobSpec("testkit.flaky", _flaky),
            JobSpec("testkit.broken", _broken),
            JobSpec("testkit.hang", _hang),
            JobSpec("testkit.clash", _clash),
            JobSpec("testkit.long", _long),
        ],
    )


def create_web(services: Services) -> WebModule:
    """The testkit routes and error envelope."""
    return WebModule(
        name="testkit",
        router=router,
        prefixes=("/testkit/",),
        render_error=_render,
        exception_handlers={Refused: _refused},
    )
