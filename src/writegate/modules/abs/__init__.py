"""Elcoin ABS package API: putDb with replication fields, reads and a changes feed."""

from __future__ import annotations

from writegate.core.module import Module
from writegate.core.services import Services
from writegate.modules.abs.console import console
from writegate.modules.abs.errors import AbsError, render_abs_error, render_error
from writegate.modules.abs.routes import router


def create(services: Services) -> Module:
    """Build the ABS module."""
    return Module(
        name="abs",
        router=router,
        prefixes=("/model/",),
        render_error=render_error,
        exception_handlers={AbsError: render_abs_error},
        console=console,
    )
