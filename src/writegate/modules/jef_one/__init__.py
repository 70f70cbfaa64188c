"""jef-one: async session/entity/employee jobs confirmed by GET."""

from __future__ import annotations

from typing import TYPE_CHECKING

from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.worker import JobSpec
from writegate.modules.jef_one import jobs

if TYPE_CHECKING:
    from writegate.core.webmodule import WebModule

__all__ = ["create", "create_web"]


def create(services: Services) -> Module:
    """jef-one's job side: its three short job kinds."""
    return Module(
        name=jobs.NAME,
        jobs=[
            JobSpec(jobs.KIND_SESSION, jobs.run_create_sessions, short=True, batch=True),
            JobSpec(jobs.KIND_ENTITY, jobs.run_upsert_entity, short=True),
            JobSpec(jobs.KIND_EMPLOYEE, jobs.run_upsert_employee, short=True),
        ],
    )


def create_web(services: Services) -> WebModule:
    """jef-one's web side: its paths, envelope, accept write and console views."""
    # Imported here, not above: a worker process never loads FastAPI or the routes.
    from fastapi import Request, Response

    from writegate.core.webmodule import WebModule
    from writegate.modules.jef_one import service
    from writegate.modules.jef_one.console import console
    from writegate.modules.jef_one.errors import JefOneError, render_error, render_jef_one_error
    from writegate.modules.jef_one.routes import router

    def handle(_request: Request, exc: JefOneError) -> Response:
        return render_jef_one_error(exc)

    services.extras[jobs.NAME] = service.Accepts(services)
    return WebModule(
        name=jobs.NAME,
        router=router,
        prefixes=("/one-", "/jef-one-"),
        render_error=render_error,
        exception_handlers={JefOneError: handle},
        console=console,
    )
