"""Pure ASGI middleware on every request: its id, its log fields and its metrics."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from writegate.core.observability import context
from writegate.core.observability.metrics import http_requests
from writegate.core.observability.requestid import HEADER, request_id

#: the route label of a request no route matched (keeps the label set bounded)
UNMATCHED = "unmatched"
#: the status label of a request left unanswered because its client went away first
#: (nginx's "client closed request"): not a server error
CLIENT_LEFT = 499


class ObserveRequests:
    """Give each request an id (X-Request-ID in and out), bind its log fields, time it.

    The fields stay bound after the app returns: uvicorn runs each request in a task of its
    own, and the error handler that logs an unhandled exception runs outside this layer.
    """

    def __init__(self, app: ASGIApp, api_of: Callable[[str], str]) -> None:
        self.app = app
        self.api_of = api_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id bound; observe its duration by route and status."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        rid = request_id(scope["headers"])
        api = self.api_of(scope["path"])
        context.FIELDS.set({"request_id": rid, "api": api})
        echo = (HEADER, rid.encode())
        # No answer from an app that returned: it saw the client leave (an unanswered
        # request is otherwise uvicorn's 500, after an error that passes through here).
        status = CLIENT_LEFT

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            if status == CLIENT_LEFT:
                status = 500
            raise
        finally:
            route = _route_of(scope, status)
            http_requests(api, route, scope["method"], str(status)).observe(perf_counter() - start)


def _route_of(scope: Scope, status: int) -> str:
    """The route label: a FastAPI route's template; the path of an answered Starlette route
    or mount (the OpenAPI document, a console file: finitely many); else UNMATCHED."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    if "endpoint" in scope and status < 400:
        return str(scope["path"])
    return UNMATCHED
