"""BokaMera: the Axema Vaka user sync API (ServiceStack style) as an exclusive background job."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from writegate.core.module import Module
from writegate.core.services import Services
from writegate.core.worker import JobSpec
from writegate.modules.bokamera import crypto
from writegate.modules.bokamera.connector import configured_factory
from writegate.modules.bokamera.handlers import SYNC_KIND, make_sync_handler
from writegate.modules.bokamera.housekeeping import forget_pruned_syncs
from writegate.modules.bokamera.settings import BokaMeraSettings

if TYPE_CHECKING:
    from writegate.core.webmodule import WebModule


def create(services: Services) -> Module:
    """The job side; tests may replace services.extras['bokamera']['connector_factory']."""
    # Unusable keys raise crypto.KeyConfigError here, so such a process never starts.
    extras = services.extras.setdefault("bokamera", {})
    extras.setdefault("connector_factory", configured_factory(BokaMeraSettings()))
    keyring = extras["keyring"] = crypto.load_keyring(services.settings)
    _announce(keyring)
    return Module(
        name="bokamera",
        jobs=[JobSpec(kind=SYNC_KIND, handler=make_sync_handler(services))],
        maintenance=[("bokamera.pruned_syncs", lambda: forget_pruned_syncs(services))],
    )


def create_web(services: Services) -> WebModule:
    """The web side: the sync's paths, the ServiceStack envelope and the console views."""
    # Imported here, not above: a worker process never loads FastAPI or the routes.
    from writegate.core.webmodule import WebModule
    from writegate.modules.bokamera.console import console
    from writegate.modules.bokamera.errors import render_error
    from writegate.modules.bokamera.routes import router

    return WebModule(
        name="bokamera",
        router=router,
        prefixes=("/codelock/", "/customers"),
        render_error=render_error,
        console=console,
        any_case=True,  # ServiceStack matches routes in any letter case
    )


def _announce(keyring: crypto.Keyring) -> None:
    log = logging.getLogger("writegate.bokamera")
    if not keyring.usable:
        log.warning(
            "no secret key for Axema Vaka passwords: %s is unset and the database is not a "
            "SQLite file; storing or using Axema settings fails until it is set "
            "(see docs/bokamera.md)",
            crypto.KEY_ENV,
        )
    else:
        log.info("Axema Vaka passwords are encrypted under the keys of %s", keyring.source)
