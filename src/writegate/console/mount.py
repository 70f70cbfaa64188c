"""Mounts the console's routers, static files, error handlers and offline docs on the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, Response
from starlette.staticfiles import StaticFiles

from writegate.console import api, pages
from writegate.console.access import Cookies, Denied
from writegate.console.docs import install_docs
from writegate.core.http import add_routes
from writegate.core.problems import BadInput
from writegate.core.services import Services


def mount(app: FastAPI, services: Services) -> None:
    """Mount the console, the admin API, their static files and the offline /docs and /redoc."""
    modules = list(app.state.modules)
    secret = services.settings.console_secret
    cookies = Cookies(secret.get_secret_value() if secret is not None else None)
    add_routes(app, api.build(services, modules, cookies))
    add_routes(app, pages.build(services, modules, cookies))
    app.mount(
        "/console/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="console-static",
    )
    install_docs(app)

    # The pages answer their own refusals (`pages.ConsoleRoute`); these are the admin API's.
    async def denied(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Denied)
        return api.error(exc.status, exc.kind, exc.message)

    async def bad_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadInput)
        return api.bad_input(exc)

    app.add_exception_handler(Denied, denied)
    app.add_exception_handler(BadInput, bad_input)
