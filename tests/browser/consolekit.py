"""A test-only module (loaded by dotted path): a job kind that fails until a gate file exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from writegate.core.http import ErrorInfo
from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.webmodule import WebModule
from writegate.core.worker import JobContext, JobSpec

GATE_KIND = "consolekit.gate"


def _gate(ctx: JobContext) -> dict[str, Any]:
    gate = Path(str(ctx.payload["gate"]))
    if not gate.exists():
        raise RuntimeError(f"gate {gate.name} is closed")
    return {"passed": gate.name}


def _render(_request: Request, info: ErrorInfo) -> Response:
    return JSONResponse({"consolekit_error": info.kind}, status_code=info.status)


def create(services: Services) -> Module:
    """Register the gate job kind."""
    return Module(name="consolekit", jobs=[JobSpec(GATE_KIND, _gate)])


def create_web(services: Services) -> WebModule:
    """The consolekit routes and error envelope."""
    return WebModule(
        name="consolekit",
        router=APIRouter(),
        prefixes=("/consolekit/",),
        render_error=_render,
    )
