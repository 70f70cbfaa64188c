"""jef-one: async session/entity/employee jobs confirmed by GET."""

from __future__ import annotations

from fastapi import Request, Response

from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.worker import JobSpec
from writegate.modules.jef_one import service
from writegate.modules.jef_one.console import console
from writegate.modules.jef_one.errors import JefOneError, render_error, render_jef_one_error
from writegate.modules.jef_one.routes import router

__all__ = ["create"]


def _handle(_request: Request, exc: JefOneError) -> Response:
    return render_jef_one_error(exc)


def create(services: Services) -> Module:
    """The jef-one module."""
    services.extras[service.NAME] = service.Accepts(services)
    return Module(
        name=service.NAME,
        router=router,
        prefixes=("/one-", "/jef-one-"),
        render_error=render_error,
        jobs=[
            JobSpec(service.KIND_SESSION, service.run_create_session, short=True),
            JobSpec(service.KIND_ENTITY, service.run_upsert_entity, short=True),
            JobSpec(service.KIND_EMPLOYEE, service.run_upsert_employee, short=True),
        ],
        exception_handlers={JefOneError: _handle},
        console=console,
    )
