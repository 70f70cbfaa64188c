"""Ikonomikal's login limits: the core's, in scope "ikonomikal", with this module's rules."""

from __future__ import annotations

from writegate.core.login_limits import LoginLimits, Rule
from writegate.core.services import Services
from writegate.modules.ikonomikal.settings import IkonomikalSettings

SCOPE = "ikonomikal"


def login_limits(services: Services, cfg: IkonomikalSettings) -> LoginLimits:
    """The limits of user ids and client addresses, as `cfg` sets them."""
    lock, most = cfg.login_lock_seconds, max(cfg.login_lock_max_seconds, cfg.login_lock_seconds)
    return LoginLimits(
        services,
        SCOPE,
        Rule(cfg.login_user_failures, lock, most, cfg.login_user_forget_seconds),
        Rule(cfg.login_address_failures, lock, most, cfg.login_address_forget_seconds),
    )
