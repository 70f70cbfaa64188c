"""An out-of-tree writegate module for the benchmarks (load with WRITEGATE_MODULES).

It registers a no-op job kind and a one-row-write job kind (both short jobs, run in the
group commit as jef-one's are), their threaded twins (run on handler threads as BokaMera's
sync is: the row written in a committed step, `ctx.step`), and an accept endpoint
shaped like jef-one's (its route class too, `JsonBodyRoute`): the group commit with one
multi-row INSERT per batch (`/bench/one-post-create-session-job`), one commit per request
(`/bench/single/...`) and no database at all (`/bench/nodb/...`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.orm import Session

from bench.marks import mark
from writegate.core.jobs import JobManager, NewJob
from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.worker import JobContext, JobSpec

if TYPE_CHECKING:
    from bench.schemas import CreateSession
    from writegate.core.webmodule import WebModule

#: business rows written by bench.row; kept off Base.metadata (the driver creates it)
metadata = MetaData()
sessions = Table(
    "bench_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("entity_number", String(64)),
    Column("job_id", String(36)),
)

KIND_ACCEPT = "bench.create_session"


def noop(ctx: JobContext) -> Any:
    """Do nothing but leave a timing mark."""
    mark()
    return None


def write_row(ctx: JobContext) -> Any:
    """Write one business row in the job's final transaction (a short job's: the batch's)."""
    mark()
    _insert_row(ctx, ctx.session)
    return None


def write_row_step(ctx: JobContext) -> Any:
    """Write one business row as a committed step, as BokaMera's sync writes its pages."""
    mark()
    ctx.step(lambda s: _insert_row(ctx, s))
    return None


def _insert_row(ctx: JobContext, session: Session) -> None:
    p = ctx.payload
    session.execute(
        insert(sessions).values(
            session_id=p.get("session_id") or ctx.job.id,
            entity_number=p.get("entity_number", ""),
            job_id=ctx.job.id,
        )
    )


def _job_kwargs(body: CreateSession) -> dict[str, Any]:
    return {"kind": KIND_ACCEPT, "payload": body.model_dump(), "tenant": body.entity_number}


class Accepts:
    """The accept's `BatchWrite`: every queued request's job in one multi-row INSERT."""

    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs

    def __call__(self, s: Session, bodies: list[CreateSession]) -> list[Any]:
        """One job (or its refusal) per body, in order."""
        return list(self.jobs.enqueue_many(s, [NewJob(**_job_kwargs(b)) for b in bodies]))


def create(services: Services) -> Module:
    """The bench job kinds (the job side: a worker loads no FastAPI for it)."""
    return Module(
        name="bench",
        jobs=[
            JobSpec("bench.noop", noop, short=True),
            JobSpec("bench.row", write_row, short=True),
            JobSpec(KIND_ACCEPT, write_row, short=True),
            JobSpec("bench.noop_threaded", noop),
            JobSpec("bench.row_threaded", write_row_step),
        ],
    )


def create_web(services: Services) -> WebModule:
    """The bench accept endpoints (bench/noop_web.py, imported only by serve)."""
    from bench.noop_web import web

    return web(services, Accepts(services.jobs), _job_kwargs)
