"""JsonBodyRoute takes its fast path only for endpoints it can call as FastAPI would, and
answers on it as FastAPI's own path does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from writegate.core.http import JsonBodyRoute, ServicesDep, add_routes

#: every call of `caller`, in order (a dependency FastAPI runs once per request)
CALLS: list[str] = []


class Body(BaseModel):
    """A request body."""

    name: str


async def caller(request: Request) -> str:
    """The caller named in x-caller; 401 without one."""
    CALLS.append("caller")
    who = request.headers.get("x-caller")
    if not who:
        raise HTTPException(status_code=401, detail="who are you")
    return who


async def admin(who: Annotated[str, Depends(caller)]) -> str:
    """A caller that is `admin`; 403 for anyone else."""
    if who != "admin":
        raise HTTPException(status_code=403, detail="admins only")
    return who


async def audited(request: Request) -> None:
    """A router-level dependency: its value is not passed on, it only runs."""
    request.state.audited = True


def sync_dependency() -> str:
    """Run by FastAPI in its thread pool."""
    return "sync"


async def generator_dependency() -> AsyncIterator[str]:
    """Has an exit FastAPI runs after the response."""
    yield "generator"


router = APIRouter(route_class=JsonBodyRoute)


@router.post("/response")
async def returns_response(body: Body, services: ServicesDep) -> JSONResponse:
    """Eligible: builds its own Response."""
    return JSONResponse({"name": body.name})


@router.post("/chain", dependencies=[Depends(audited)])
async def chain(
    body: Body,
    who: Annotated[str, Depends(admin)],
    again: Annotated[str, Depends(caller)],
    request: Request,
) -> JSONResponse:
    """Not eligible: it takes the request itself."""
    return JSONResponse({"who": who})


@router.post("/principal", dependencies=[Depends(audited)])
async def principal(
    body: Body, who: Annotated[str, Depends(admin)], again: Annotated[str, Depends(caller)]
) -> JSONResponse:
    """Eligible: every dependency is an async function of the request or of another one."""
    return JSONResponse({"name": body.name, "who": who, "again": again})


@router.post("/dict")
async def returns_dict(body: Body, services: ServicesDep) -> dict[str, Any]:
    """Not eligible: FastAPI must serialize its return value."""
    return {"name": body.name}


@router.post("/query")
async def takes_query(body: Body, services: ServicesDep, q: str) -> JSONResponse:
    """Not eligible: a query parameter needs FastAPI's dependency solving."""
    return JSONResponse({"q": q})


@router.post("/header")
async def takes_header(body: Body, x_tag: Annotated[str, Header()]) -> JSONResponse:
    """Not eligible: a header parameter needs FastAPI's validation."""
    return JSONResponse({"tag": x_tag})


@router.post("/sync")
async def takes_sync(body: Body, got: Annotated[str, Depends(sync_dependency)]) -> JSONResponse:
    """Not eligible: a sync dependency runs in FastAPI's thread pool."""
    return JSONResponse({"got": got})


@router.post("/generator")
async def takes_generator(
    body: Body, got: Annotated[str, Depends(generator_dependency)]
) -> JSONResponse:
    """Not eligible: a yield dependency's exit needs FastAPI's exit stack."""
    return JSONResponse({"got": got})


def test_fast_path_only_for_endpoints_it_can_call_as_fastapi_would() -> None:
    eligible = {
        r.path: r.direct_call() is not None for r in router.routes if isinstance(r, JsonBodyRoute)
    }
    assert eligible == {
        "/response": True,
        "/chain": False,
        "/principal": True,
        "/dict": False,
        "/query": False,
        "/header": False,
        "/sync": False,
        "/generator": False,
    }


def post(headers: dict[str, str], content: str | bytes) -> httpx.Response:
    """POST /principal to an app of the router."""
    app = FastAPI()
    add_routes(app, router)

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/principal", headers=headers, content=content)

    return asyncio.run(send())


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("headers", "content", "status", "answer"),
    [
        ({**JSON, "x-caller": "admin"}, '{"name": "n"}', 200, {"name": "n", "who": "admin"}),
        (JSON, '{"name": "n"}', 401, {"detail": "who are you"}),
        ({**JSON, "x-caller": "eve"}, '{"name": "n"}', 403, {"detail": "admins only"}),
        ({**JSON, "x-caller": "eve"}, '{"nome": "n"}', 403, {"detail": "admins only"}),
        ({"x-caller": "admin"}, '{"name": "n"}', 422, {}),
        (
            {"content-type": "APPLICATION/JSON; charset=utf-8", "x-caller": "admin"},
            '{"name": "n"}',
            200,
            {"name": "n"},
        ),
        (
            {"content-type": "application/vnd.api+json", "x-caller": "admin"},
            '{"name": "n"}',
            200,
            {},
        ),
        ({"content-type": "application/jsonx", "x-caller": "admin"}, '{"name": "n"}', 422, {}),
        ({"content-type": "application/json-seq", "x-caller": "admin"}, '{"name": "n"}', 422, {}),
    ],
    ids=[
        "fast",
        "fast-401",
        "fast-403",
        "invalid-body-slow-403",
        "no-json-type-slow",
        "json-type-in-any-case",
        "json-suffix-type",
        "json-lookalike-type-slow",
        "json-seq-type-slow",
    ],
)
def test_fast_and_slow_paths_answer_alike_and_run_a_dependency_once(
    headers: dict[str, str], content: str, status: int, answer: dict[str, str]
) -> None:
    """Dependencies run before the endpoint, once each; their errors are FastAPI's."""
    CALLS.clear()
    r = post(headers, content)
    assert r.status_code == status, r.text
    assert {k: r.json()[k] for k in answer} == answer
    assert CALLS == ["caller"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_that_is_not_utf8_is_malformed_json_on_either_path(encoding: str) -> None:
    """Starlette would read UTF-16 and UTF-32 bytes as JSON; the route refuses them."""
    r = post({**JSON, "x-caller": "admin"}, '{"name": "n"}'.encode(encoding))
    assert r.status_code == 422, r.text
    [problem] = r.json()["detail"]
    assert (problem["type"], problem["ctx"]) == ("json_invalid", {"error": "the body is not UTF-8"})


async def as_admin() -> str:
    """Stands in for `caller`: everyone is admin."""
    CALLS.append("as_admin")
    return "admin"


def test_while_a_dependency_is_overridden_the_route_takes_fastapis_path() -> None:
    """The override runs in place of the dependency (no x-caller needed), then no longer."""
    app = FastAPI()
    add_routes(app, router)
    app.dependency_overrides[caller] = as_admin

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/principal", headers=JSON, content='{"name": "n"}')

    CALLS.clear()
    r = asyncio.run(send())
    assert (r.status_code, r.json()) == (200, {"name": "n", "who": "admin", "again": "admin"})
    assert CALLS == ["as_admin"]
    app.dependency_overrides.clear()
    CALLS.clear()
    assert asyncio.run(send()).status_code == 401
    assert CALLS == ["caller"]
