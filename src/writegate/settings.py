"""Process-wide settings, read from WRITEGATE_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ALL_MODULES = ("jef_one", "ikonomikal", "bokamera", "abs")


class Settings(BaseSettings):
    """Every tunable of a writegate process."""

    model_config = SettingsConfigDict(env_prefix="WRITEGATE_", extra="ignore")

    database_url: str = "sqlite:///./writegate.db"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    #: "json" (one object per line), "console" (readable), or "auto": console on a terminal
    log_format: Literal["auto", "json", "console"] = "auto"
    #: uvicorn's line per request (through the same format; probes' 2xx lines are dropped)
    access_log: bool = True
    #: a standalone worker serves GET /metrics and GET /healthz on this port (None: off)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    #: OpenTelemetry spans for requests, enqueues and job runs (needs `writegate[otel]`;
    #: exported over OTLP/HTTP as the OTEL_EXPORTER_OTLP_* variables say)
    otel: bool = False
    auto_migrate: bool = True
    modules: list[str] = Field(default_factory=lambda: list(ALL_MODULES))

    embedded_worker: bool = True
    worker_concurrency: int = Field(default=4, ge=1, le=256)
    worker_poll_interval: float = Field(default=1.0, gt=0)
    job_lease_seconds: float = Field(default=30.0, gt=0)
    job_timeout_seconds: float = Field(default=600.0, gt=0)
    job_max_attempts: int = Field(default=5, ge=1)
    job_backoff_base: float = Field(default=1.0, ge=0)
    job_backoff_max: float = Field(default=300.0, ge=0)
    reaper_interval: float = Field(default=5.0, gt=0)

    maintenance_interval: float = Field(default=300.0, gt=0)
    #: housekeeping deletes finished jobs older than this many days (0: keep every job)
    job_retention_days: float = Field(default=7.0, ge=0)

    token_ttl_seconds: int = Field(default=3600, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    #: a request body that has not fully arrived this many seconds after its first byte
    #: is refused (408): a client sending one byte a second holds no worker forever
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    #: how long an API key that authenticated is trusted without a database look-up; a
    #: revocation in another process takes effect within this time (0: look up every time)
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    #: on SIGTERM a worker lets running jobs finish this long, then hands them back
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    db_pool_size: int = Field(default=10, ge=1)
    #: `serve`'s GIL switch interval (`sys.setswitchinterval`), in milliseconds: the longest
    #: a thread that is ready to run (a group commit back from its fsync, the embedded worker
    #: woken by a job) waits for the busy event loop to hand over the GIL
    gil_switch_interval_ms: float = Field(default=0.5, gt=0, le=1000)
