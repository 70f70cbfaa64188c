"""JsonBodyRoute takes its fast path only for endpoints it can call as FastAPI would."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from writegate.core.http import JsonBodyRoute, ServicesDep


class Body(BaseModel):
    """A request body."""

    name: str


router = APIRouter(route_class=JsonBodyRoute)


@router.post("/response")
async def returns_response(body: Body, services: ServicesDep) -> JSONResponse:
    """Eligible: builds its own Response."""
    return JSONResponse({"name": body.name})


@router.post("/dict")
async def returns_dict(body: Body, services: ServicesDep) -> dict[str, Any]:
    """Not eligible: FastAPI must serialize its return value."""
    return {"name": body.name}


@router.post("/query")
async def takes_query(body: Body, services: ServicesDep, q: str) -> JSONResponse:
    """Not eligible: a query parameter needs FastAPI's dependency solving."""
    return JSONResponse({"q": q})


def test_fast_path_only_for_body_services_endpoints_that_return_a_response() -> None:
    eligible = {
        r.path: r.direct_call() is not None for r in router.routes if isinstance(r, JsonBodyRoute)
    }
    assert eligible == {"/response": True, "/dict": False, "/query": False}
