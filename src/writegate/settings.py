"""Process-wide settings, read from WRITEGATE_* environment variables and a `.env` file."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ALL_MODULES = ("jef_one", "ikonomikal", "bokamera", "abs")

#: the `.env` file read from the working directory; real environment variables win over it
ENV_FILE = ".env"

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


def _list(value: Any) -> Any:
    """A JSON list (`["a","b"]`) or comma-separated words (`a,b`) from the environment."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError('not a JSON list; write a,b or ["a","b"]') from None
    return [item.strip() for item in text.split(",") if item.strip()]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


#: a list setting: `a,b` or a JSON list in the environment
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_list)]


def env_config(prefix: str) -> SettingsConfigDict:
    """How every writegate settings class reads its values: `prefix` variables, then `.env`."""
    return SettingsConfigDict(
        env_prefix=prefix, env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class Settings(BaseSettings):
    """Every tunable of a writegate process."""

    # Each field's `#:` comment is its line in docs/configuration.md (`writegate config docs`).

    model_config = env_config("WRITEGATE_")

    #: `sqlite:///PATH` (one machine) or `postgresql://USER:PASSWORD@HOST/DB` (scale-out)
    database_url: str = "sqlite:///./writegate.db"
    #: `serve`'s bind address
    host: str = "127.0.0.1"
    #: `serve`'s TCP port
    port: int = Field(default=8000, ge=0, le=65535)
    #: one of critical, error, warning, info, debug (any case)
    log_level: Annotated[LogLevel, BeforeValidator(_lower)] = "info"
    #: "json" (one object per line), "console" (readable), or "auto": console on a terminal
    log_format: Literal["auto", "json", "console"] = "auto"
    #: uvicorn's line per request (through the same format; probes' 2xx lines are dropped)
    access_log: bool = True
    #: `serve` keeps an idle client connection open this long. Longer than clients' and
    #: proxies' own idle timeouts (httpx 5 s, AWS load balancers 60 s), so the client side
    #: closes first: a server closing a connection just as a client reuses it fails that
    #: client's request
    keep_alive_seconds: int = Field(default=65, ge=1)
    #: a standalone worker serves GET /metrics and GET /healthz on this port (unset: off)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    #: OpenTelemetry spans for requests, enqueues and job runs (needs `writegate[otel]`;
    #: exported over OTLP/HTTP as the OTEL_EXPORTER_OTLP_* variables say)
    otel: bool = False
    #: `serve` and `worker` migrate the schema at start; false: only `writegate migrate` does
    auto_migrate: bool = True
    #: API modules to load: bundled names or dotted import paths, as `a,b` or a JSON list
    modules: CommaList = Field(default_factory=lambda: list(ALL_MODULES))

    #: `serve` runs jobs in its own process too (`serve --no-worker` turns it off)
    embedded_worker: bool = True
    #: jobs of kinds that are not short one worker process runs at once, a handler thread
    #: each (short kinds run in the group commit); a handler that writes through
    #: `ctx.session` holds a pooled connection while it runs (see docs/deployment.md)
    worker_concurrency: int = Field(default=16, ge=1, le=256)
    #: seconds between a worker's polls when no wake-up arrives
    worker_poll_interval: float = Field(default=1.0, gt=0)
    #: a running job's lease; a worker that stops renewing it loses the job to another
    job_lease_seconds: float = Field(default=30.0, gt=0)
    #: an attempt running this long without a checkpoint is ended (retried if attempts remain)
    job_timeout_seconds: float = Field(default=600.0, gt=0)
    #: attempts before a job is failed for good
    job_max_attempts: int = Field(default=5, ge=1)
    #: first retry delay in seconds; doubles per attempt (with jitter) up to the max
    job_backoff_base: float = Field(default=1.0, ge=0)
    #: longest retry delay in seconds
    job_backoff_max: float = Field(default=300.0, ge=0)
    #: seconds between a worker's scans for expired leases and for jobs still waiting on a job
    #: that is final
    reaper_interval: float = Field(default=5.0, gt=0)

    #: seconds between housekeeping runs (expired tokens and sessions)
    maintenance_interval: float = Field(default=300.0, gt=0)
    #: housekeeping deletes finished jobs older than this many days (0: keep every job; at
    #: most 36500)
    job_retention_days: float = Field(default=7.0, ge=0, le=36_500)

    #: lifetime of a process token, in seconds
    token_ttl_seconds: int = Field(default=3600, gt=0)
    #: largest request body accepted, in bytes
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    #: a request body that has not fully arrived this many seconds after its first byte
    #: is refused, in the API's own form (BokaMera 408, jef-one 400, ABS and Ikonomikal their
    #: error codes): a client sending one byte a second holds no worker forever
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    #: how long an API key that authenticated is trusted without a database look-up; a
    #: revocation in another process takes effect within this time (0: look up every time)
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    #: on SIGTERM a worker lets running jobs finish this long, then hands them back
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    #: connections a process keeps open; under bursts PostgreSQL opens up to 3x this (see
    #: docs/deployment.md for the pool sizes against PostgreSQL's `max_connections`)
    db_pool_size: int = Field(default=10, ge=1)
    #: connections a `serve` process keeps for the reads it answers on its event loop (at
    #: most this many on PostgreSQL; see docs/deployment.md)
    db_read_pool_size: int = Field(default=5, ge=1)
    #: `serve`'s GIL switch interval (`sys.setswitchinterval`), in milliseconds: the longest
    #: a thread that is ready to run (a group commit back from its fsync, the embedded worker
    #: woken by a job) waits for the busy event loop to hand over the GIL
    gil_switch_interval_ms: float = Field(default=0.5, gt=0, le=1000)
    #: the garbage collector collects its youngest generation once a process's tracked
    #: objects have grown by this many since its last collection (`gc.set_threshold`;
    #: Python's default is 700)
    gc_young_threshold: int = Field(default=10_000, ge=1)

    #: the console's cookie signing secret; unset: a random one per process (sign-ins end at
    #: a restart; every `serve` process, `--workers N` included, needs the same one set)
    console_secret: SecretStr | None = None

    #: BokaMera: secret keys for stored Axema Vaka passwords, separated by commas; the first
    #: encrypts, every one decrypts (rotation). Unset: the key file below.
    bokamera_secret_key: SecretStr | None = None
    #: BokaMera: file of secret keys (one a line, mode 0600), generated if missing; unset: for
    #: a SQLite database file `<database>.bokamera.key` beside it, else no key (see docs)
    bokamera_key_file: str | None = None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        found = _SCHEME.match(value)
        if found is None:
            raise ValueError(
                "not a database URL; expected sqlite:///PATH or postgresql://USER@HOST/DB"
            )
        backend = found.group(1).split("+", 1)[0].lower()
        if backend not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported database {backend!r}; use sqlite or postgresql")
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(f"malformed database URL ({exc})") from None
        if backend == "sqlite" and url.database in (None, "", ":memory:"):
            # Each connection would see a database of its own, empty (and every process).
            raise ValueError("an SQLite database in memory is not shared: give a file path")
        return value

    @field_validator("modules")
    @classmethod
    def _modules(cls, value: list[str]) -> list[str]:
        for name in value:
            if "." not in name and name not in ALL_MODULES:
                raise ValueError(
                    f"unknown module {name!r}; bundled: {', '.join(ALL_MODULES)} "
                    "(or a dotted import path)"
                )
        return value
