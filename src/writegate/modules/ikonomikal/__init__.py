"""Ikonomikal: login, process tokens and program SS07 (department profile) on the core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from writegate.core.module import Module
from writegate.core.services import Services
from writegate.modules.ikonomikal.housekeeping import purge_expired
from writegate.modules.ikonomikal.logins import login_limits
from writegate.modules.ikonomikal.settings import IkonomikalSettings

if TYPE_CHECKING:
    from writegate.core.webmodule import WebModule

#: this module's name, and its key in services.extras (where its service object lives)
NAME = "ikonomikal"


def create(services: Services) -> Module:
    """Ikonomikal's job side: the housekeeping of sessions, tokens and login failures."""
    cfg = IkonomikalSettings()
    return Module(
        name=NAME,
        maintenance=[
            ("ikonomikal.expired", lambda: purge_expired(services, cfg)),
            ("ikonomikal.login_failures", login_limits(services, cfg).purge),
        ],
    )


def create_web(services: Services) -> WebModule:
    """Ikonomikal's web side: its service object lives in services.extras['ikonomikal']."""
    # Imported here, not above: a worker process never loads FastAPI or the routes.
    from writegate.core.webmodule import WebModule
    from writegate.modules.ikonomikal.console import make_console
    from writegate.modules.ikonomikal.routes import render_error, router
    from writegate.modules.ikonomikal.service import Ikonomikal

    cfg = IkonomikalSettings()
    services.extras[NAME] = Ikonomikal(services, cfg)
    return WebModule(
        name=NAME,
        router=router,
        # Both Ikonomikal hosts (sc-api and ss-api), and any unknown path in their style.
        prefixes=("/bcss_wbcl_wa_",),
        render_error=render_error,
        console=make_console(services.clock, cfg),
        any_case=True,  # the vendor's IIS servers match paths in any letter case
    )
