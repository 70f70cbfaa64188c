"""Ikonomikal's own tunables: WRITEGATE_IKONOMIKAL_* variables, then `.env` (as Settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from writegate.settings import env_config


class IkonomikalSettings(BaseSettings):
    """Session lifetime, login limits and read limits (tokens: WRITEGATE_TOKEN_TTL_SECONDS)."""

    model_config = env_config("WRITEGATE_IKONOMIKAL_")

    #: a session ends after this long without use
    session_idle_seconds: int = Field(default=8 * 3600, gt=0)
    #: refresh a session's idle timer at most this often; 0 (exact) writes it on every call,
    #: N saves writes but may end a session up to N seconds before the idle time is up
    session_touch_seconds: int = Field(default=0, ge=0)
    #: most rows one read/list answers
    max_rows: int = Field(default=500, ge=1)
    #: failed logins of one user id that lock it (a success clears its count)
    login_user_failures: int = Field(default=5, ge=1)
    #: failed logins from one client address that lock it
    login_address_failures: int = Field(default=30, ge=1)
    #: the first lock; each further failure doubles it, up to login_lock_max_seconds
    login_lock_seconds: int = Field(default=60, ge=1)
    #: the longest lock
    login_lock_max_seconds: int = Field(default=900, ge=1)
    #: a user id's failures are forgotten this long after its last failure or lock
    login_user_forget_seconds: int = Field(default=900, ge=1)
    #: an address's failures are forgotten this long after its last failure or lock
    login_address_forget_seconds: int = Field(default=60, ge=1)
