"""BokaMera: the Axema Vaka user sync API (ServiceStack style) as an exclusive background job."""

from __future__ import annotations

from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.worker import JobSpec
from writegate.modules.bokamera.connector import configured_factory
from writegate.modules.bokamera.console import console
from writegate.modules.bokamera.errors import render_error
from writegate.modules.bokamera.handlers import make_sync_handler
from writegate.modules.bokamera.routes import router
from writegate.modules.bokamera.service import SYNC_KIND


def create(services: Services) -> Module:
    """Build the module; tests may replace services.extras['bokamera']['connector_factory']."""
    services.extras.setdefault("bokamera", {}).setdefault("connector_factory", configured_factory())
    return Module(
        name="bokamera",
        router=router,
        prefixes=("/codelock/", "/customers"),
        render_error=render_error,
        jobs=[JobSpec(kind=SYNC_KIND, handler=make_sync_handler(services))],
        console=console,
    )
