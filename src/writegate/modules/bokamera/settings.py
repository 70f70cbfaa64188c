"""BokaMera's own tunables: WRITEGATE_BOKAMERA_* variables, then `.env` (as Settings)."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from writegate.modules.bokamera.reach import Reach
from writegate.settings import env_config


class BokaMeraSettings(BaseSettings):
    """Where a BokaMera sync may connect, and how much it reads from Vaka."""

    model_config = env_config("WRITEGATE_BOKAMERA_")

    #: the only networks a sync connects to, comma-separated (CIDR, or one address); empty:
    #: any address but link-local (a cloud's metadata service), unspecified, multicast, reserved
    vaka_networks: str = ""
    #: users asked for per Vaka page (Vaka may serve fewer); read as each sync starts
    page_size: int = Field(default=200, ge=1, le=100_000)
    #: most users one sync takes before it fails (a Vaka whose pages never end); read as each
    #: sync starts
    max_users: int = Field(default=1_000_000, ge=1)
    #: `module:attribute` of a connector factory to use instead of the HTTP connector (another
    #: transport); every server and worker process needs the same
    connector: str = ""

    @field_validator("vaka_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        Reach.parse(value)  # a ValueError names the part that is not a network
        return value

    @field_validator("connector")
    @classmethod
    def _importable(cls, value: str) -> str:
        _load(value.strip())  # a ValueError says why it does not load
        return value.strip()

    def reach(self) -> Reach:
        """The addresses a sync may connect to."""
        return Reach.parse(self.vaka_networks)

    def custom_connector(self) -> Any:
        """The connector factory `connector` names; None for the HTTP connector."""
        return _load(self.connector)


def _load(spec: str) -> Any:
    """The object a `module:attribute` spec names (`create` if no attribute); None for ""."""
    if not spec:
        return None
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr or "create")
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {spec!r}: {exc}") from None
