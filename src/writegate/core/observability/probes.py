"""Readiness and metrics endpoints of `serve` (liveness stays the app's /healthz)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from writegate.core.db import Database
from writegate.core.migrations import at_head


class Readiness:
    """Ready once the database answers and its schema is at head; reports the worker's state."""

    def __init__(
        self, db: Database, version_dirs: Sequence[Path], worker_state: Callable[[], str]
    ) -> None:
        self.db = db
        self.version_dirs = list(version_dirs)
        self.worker_state = worker_state
        #: a schema once at head stays there (migrations only move forward)
        self._at_head = False

    def check(self) -> tuple[bool, dict[str, Any]]:
        """Whether the process is ready, and what each check found."""
        report: dict[str, Any] = {"database": "ok", "schema": "at head"}
        try:
            with self.db.read() as s:
                s.execute(text("SELECT 1"))
        except Exception:
            report["database"] = "unavailable"
        if not self._at_head and report["database"] == "ok":
            self._at_head = at_head(self.db, self.version_dirs)
        if not self._at_head:
            report["schema"] = "behind" if report["database"] == "ok" else "unknown"
        state = self.worker_state()
        report["worker"] = state
        ready = report["database"] == "ok" and self._at_head and state != "dead"
        report["status"] = "ready" if ready else "not ready"
        return ready, report


def router(readiness: Readiness, registry: CollectorRegistry) -> APIRouter:
    """GET /readyz and GET /metrics (kept out of the OpenAPI document: not part of any API)."""
    api = APIRouter(include_in_schema=False)

    @api.get("/readyz")
    def readyz() -> Response:
        """503 until the database answers and the schema is at head."""
        ready, report = readiness.check()
        return JSONResponse(report, status_code=200 if ready else 503)

    @api.get("/metrics")
    def metrics() -> Response:
        """Prometheus text exposition of this server's (or all its workers') metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api
