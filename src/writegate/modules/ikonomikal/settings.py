"""Ikonomikal's own tunables, read from WRITEGATE_IKONOMIKAL_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IkonomikalSettings(BaseSettings):
    """Session lifetime and read limits (tokens use the core's WRITEGATE_TOKEN_TTL_SECONDS)."""

    model_config = SettingsConfigDict(env_prefix="WRITEGATE_IKONOMIKAL_", extra="ignore")

    #: a session ends after this long without use
    session_idle_seconds: int = Field(default=8 * 3600, gt=0)
    #: refresh a session's idle timer at most this often; 0 (exact) writes it on every call,
    #: N saves writes but may end a session up to N seconds before the idle time is up
    session_touch_seconds: int = Field(default=0, ge=0)
    #: most rows one read/list answers
    max_rows: int = Field(default=500, ge=1)
