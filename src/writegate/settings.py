"""Process-wide settings, read from WRITEGATE_* environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ALL_MODULES = ("jef_one", "ikonomikal", "bokamera", "abs")


class Settings(BaseSettings):
    """Every tunable of a writegate process."""

    model_config = SettingsConfigDict(env_prefix="WRITEGATE_", extra="ignore")

    database_url: str = "sqlite:///./writegate.db"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
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

    #: BokaMera: Fernet keys for stored Axema Vaka passwords, separated by commas; the first
    #: encrypts, every one decrypts (rotation). Unset: the key file below.
    bokamera_secret_key: SecretStr | None = None
    #: BokaMera: file of Fernet keys (one a line, mode 0600), generated if missing; unset: for
    #: a SQLite database file `<database>.bokamera.key` beside it, else no key (see docs)
    bokamera_key_file: str | None = None
