"""add_routes makes a router's routes the app's own and keeps what the router gave them."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute

from writegate.core.http import add_routes


async def needs_key(request: Request) -> None:
    """A router-level dependency: refuses a request without x-key."""
    if "x-key" not in request.headers:
        raise HTTPException(status_code=401, detail="no key")


class TaggedRoute(APIRoute):
    """A route class whose handler marks its answers."""

    def get_route_handler(self):  # type: ignore[no-untyped-def]
        """FastAPI's handler, with a header added."""
        handler = super().get_route_handler()

        async def tagged(request: Request):  # type: ignore[no-untyped-def]
            response = await handler(request)
            response.headers["x-route-class"] = "tagged"
            return response

        return tagged


def build() -> tuple[FastAPI, APIRouter, APIRouter]:
    """An app with a prefixed router that has a dependency, and one with a route class."""
    first = APIRouter(prefix="/first", dependencies=[Depends(needs_key)])
    second = APIRouter(route_class=TaggedRoute)

    @first.post("/item", operation_id="first_item")
    async def first_item() -> dict[str, str]:
        return {"from": "first"}

    @second.post("/first/item", operation_id="second_item")
    async def shadowed() -> dict[str, str]:
        return {"from": "second"}

    @second.get("/second/{name}", operation_id="second_name")
    async def named(name: str) -> dict[str, str]:
        return {"name": name}

    app = FastAPI()
    add_routes(app, first)
    add_routes(app, second)
    return app, first, second


def _shape(route: object) -> tuple[object, ...]:
    assert isinstance(route, APIRoute)
    return (route.path, route.methods, route.endpoint, type(route))


def test_the_routers_routes_are_the_apps_own_in_order() -> None:
    """No nested router for a request to walk: the app lists the routes, in order."""
    app, first, second = build()
    mine = {r.endpoint for r in [*first.routes, *second.routes] if isinstance(r, APIRoute)}
    own = [r for r in app.router.routes if isinstance(r, APIRoute) and r.endpoint in mine]
    assert [_shape(r) for r in own] == [_shape(r) for r in [*first.routes, *second.routes]]


def test_requests_keep_the_routers_prefix_dependencies_and_route_class() -> None:
    """The prefix and router dependency apply, the route class runs, the first route wins."""
    app, _, _ = build()

    async def requests() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            assert (await client.post("/first/item")).status_code == 401
            answer = await client.post("/first/item", headers={"x-key": "1"})
            assert answer.json() == {"from": "first"}
            named = await client.get("/second/ada")
            assert named.json() == {"name": "ada"}
            assert named.headers["x-route-class"] == "tagged"
            assert (await client.get("/second")).status_code == 404
            doc = (await client.get("/openapi.json")).json()
        assert set(doc["paths"]) == {"/first/item", "/second/{name}"}

    asyncio.run(requests())


def test_an_openapi_document_made_before_add_routes_is_made_again() -> None:
    """Routes added after the document was first served are in the next one."""
    app = FastAPI()
    late = APIRouter()

    @late.get("/late", operation_id="late")
    async def late_route() -> dict[str, str]:
        return {}

    assert "/late" not in app.openapi()["paths"]
    add_routes(app, late)
    assert "/late" in app.openapi()["paths"]


async def allow() -> None:
    """Stands in for `needs_key`."""


def test_each_app_s_dependency_overrides_reach_the_routes_it_added() -> None:
    """One router in two apps: an override in one lets its requests in, not the other's."""
    first = APIRouter(prefix="/first", dependencies=[Depends(needs_key)])

    @first.get("/item", operation_id="first_item")
    async def first_item() -> dict[str, str]:
        return {"from": "first"}

    overriding, plain = FastAPI(), FastAPI()
    add_routes(overriding, first)
    add_routes(plain, first)
    overriding.dependency_overrides[needs_key] = allow

    async def status(app: FastAPI) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return (await client.get("/first/item")).status_code

    assert asyncio.run(status(overriding)) == 200
    assert asyncio.run(status(plain)) == 401
    overriding.dependency_overrides.clear()
    assert asyncio.run(status(overriding)) == 401


def test_a_route_with_its_own_body_limit_is_refused() -> None:
    """writegate's BodyLimit middleware limits every body; a per-route limit would be lost."""
    limited = APIRouter()

    @limited.post("/limited", operation_id="limited", max_body_size=10)
    async def limited_route() -> dict[str, str]:
        return {}

    with pytest.raises(ValueError, match="/limited: writegate's BodyLimit"):
        add_routes(FastAPI(), limited)
