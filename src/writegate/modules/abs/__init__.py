"""Elcoin ABS package API: putDb with replication fields, reads and a changes feed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from writegate.core.module import Module
from writegate.core.services import Services

if TYPE_CHECKING:
    from writegate.core.webmodule import WebModule


def create(services: Services) -> Module:
    """The ABS job side: none (every ABS write is answered in the request)."""
    return Module(name="abs")


def create_web(services: Services) -> WebModule:
    """The ABS web side: its paths, the ok/ERROR envelope and the console views."""
    # Imported here, not above: a worker process never loads FastAPI or the routes.
    from writegate.core.webmodule import WebModule
    from writegate.modules.abs.console import console
    from writegate.modules.abs.errors import AbsError, render_abs_error, render_error
    from writegate.modules.abs.routes import router

    return WebModule(
        name="abs",
        router=router,
        prefixes=("/model/",),
        render_error=render_error,
        exception_handlers={AbsError: render_abs_error},
        console=console,
    )
