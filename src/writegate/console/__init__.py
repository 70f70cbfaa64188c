"""The operator console (/console), its JSON admin API (/admin/api/) and offline API docs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from writegate.core.services import Services


def install(app: FastAPI, services: Services) -> None:
    """Mount the console, the admin API, their static files and the offline /docs and /redoc."""
    # Imported here: `writegate jobs show` uses console.masking, and none of the web stack.
    from writegate.console.mount import mount

    mount(app, services)
