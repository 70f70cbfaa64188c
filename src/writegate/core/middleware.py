"""Pure ASGI middleware every API shares: the request body's size and time limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from writegate.core.http import ErrorInfo

#: renders an error in the envelope of the API that owns the request's path
Render = Callable[[Request, ErrorInfo], Response]


class BodyLimit:
    """Read the whole body before any handler runs: refuse it if too large or too slow.

    A body over `max_bytes` is answered 413 (without reading past the limit); a body not
    complete `timeout` seconds after the request started is answered 408. Either way the
    connection is closed and no handler runs.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float, render: Render) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body within its limits, then hand it to the app in one message."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        refusal: ErrorInfo | None = None
        if _declared_length(scope) > self.max_bytes:
            refusal = ErrorInfo(413, "too_large", f"request body exceeds {self.max_bytes} bytes")
        chunks: list[bytes] = []
        if refusal is None:
            try:
                refusal = await self._read(receive, chunks)
            except _ClientLeft:
                return
        if refusal is not None:
            response = self.render(Request(scope), refusal)
            response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, chunks: list[bytes]) -> ErrorInfo | None:
        size, more = 0, True
        try:
            # One timer for the whole body (no task per message, as wait_for would make).
            async with asyncio.timeout(self.timeout):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientLeft
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        return ErrorInfo(
                            413, "too_large", f"request body exceeds {self.max_bytes} bytes"
                        )
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            return ErrorInfo(408, "timeout", f"request body not received within {self.timeout:g} s")
        return None


class _ClientLeft(Exception):
    """The client disconnected before its body was complete: nothing to answer."""


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 1 << 62  # unreadable: refused as too large
    return 0
