"""Ikonomikal: login, process tokens and program SS07 (department profile) on the core."""

from __future__ import annotations

from writegate.core.module import Module
from writegate.core.services import Services
from writegate.modules.ikonomikal.console import make_console
from writegate.modules.ikonomikal.routes import NAME, render_error, router
from writegate.modules.ikonomikal.service import Ikonomikal
from writegate.modules.ikonomikal.sessions import purge_expired
from writegate.modules.ikonomikal.settings import IkonomikalSettings


class AnyCaseModule(Module):
    """A Module owning its prefixes in any letter case (the vendor's paths are)."""

    def owns(self, path: str) -> bool:
        """Whether a request path belongs to this module, whatever its case."""
        return super().owns(path.lower())


def create(services: Services) -> Module:
    """Build the module: its service object lives in services.extras['ikonomikal']."""
    cfg = IkonomikalSettings()
    iko = Ikonomikal(services, cfg)
    services.extras[NAME] = iko
    return AnyCaseModule(
        name=NAME,
        router=router,
        # Both Ikonomikal hosts (sc-api and ss-api), and any unknown path in their style.
        prefixes=("/bcss_wbcl_wa_",),
        render_error=render_error,
        maintenance=[
            ("ikonomikal.expired", lambda: purge_expired(services, cfg)),
            ("ikonomikal.login_failures", iko.limits.purge),
        ],
        console=make_console(services.clock, cfg),
    )
