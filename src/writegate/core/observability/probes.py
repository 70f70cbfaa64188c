"""Liveness, readiness and metrics endpoints of `serve` (the app's /healthz also checks the
database)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from writegate.core.db import Database
from writegate.core.migrations import SchemaState, schema_of

#: what /readyz reports of each schema state; ready with the first two
_SCHEMA = {
    SchemaState.CURRENT: "at head",
    SchemaState.AHEAD: "ahead",  # a newer release migrated it: a rolling upgrade
    SchemaState.BEHIND: "behind",
    SchemaState.MISSING: "missing",
    SchemaState.UNKNOWN: "unknown",
}


class Readiness:
    """Ready once the database answers and its schema is at head (or ahead, migrated by a
    newer release); reports the worker's state."""

    def __init__(
        self, db: Database, version_dirs: Sequence[Path], worker_state: Callable[[], str]
    ) -> None:
        self.db = db
        self.version_dirs = list(version_dirs)
        self.worker_state = worker_state
        #: what the schema was found once at head or ahead: it stays so (migrations only
        #: move forward); None until then
        self._usable: str | None = None

    def check(self) -> tuple[bool, dict[str, Any]]:
        """Whether the process is ready, and what each check found."""
        report: dict[str, Any] = {"database": "ok", "schema": self._usable}
        try:
            with self.db.read() as s:
                s.execute(text("SELECT 1"))
        except Exception:
            report["database"] = "unavailable"
        if self._usable is None:
            schema = SchemaState.UNKNOWN
            if report["database"] == "ok":
                schema = schema_of(self.db, self.version_dirs)
            report["schema"] = _SCHEMA[schema]
            if schema in (SchemaState.CURRENT, SchemaState.AHEAD):
                self._usable = report["schema"]
        state = self.worker_state()
        report["worker"] = state
        ready = report["database"] == "ok" and self._usable is not None and state != "dead"
        report["status"] = "ready" if ready else "not ready"
        return ready, report


def router(readiness: Readiness, registry: CollectorRegistry) -> APIRouter:
    """GET (and HEAD, which load balancers' checks send) /livez, /readyz and /metrics, kept
    out of the OpenAPI document: not part of any API."""
    api = APIRouter(include_in_schema=False)

    @api.api_route("/livez", methods=["GET", "HEAD"])
    def livez() -> Response:
        """200 while the process answers: a liveness probe that a database outage, which
        restarting the process cannot mend, does not fail."""
        return JSONResponse({"status": "ok"})

    @api.api_route("/readyz", methods=["GET", "HEAD"])
    def readyz() -> Response:
        """503 until the database answers and the schema is at head (or ahead)."""
        ready, report = readiness.check()
        return JSONResponse(report, status_code=200 if ready else 503)

    @api.api_route("/metrics", methods=["GET", "HEAD"])
    def metrics() -> Response:
        """Prometheus text exposition of this server's (or all its workers') metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api
