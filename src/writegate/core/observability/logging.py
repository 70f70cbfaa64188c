"""One structured log format for writegate's and uvicorn's loggers (structlog).

JSON lines when stderr is not a terminal, readable key=value lines when it is (or as
`--log-format` says). Every line carries the fields bound to the request or job it was
written for (request_id, job_id, tenant, api: see `context`).
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import MutableMapping
from typing import Any

from writegate.core.lazy import without
from writegate.core.observability import context, tracing

# structlog's console renderer draws exceptions with rich when it is installed; writegate
# draws them with structlog's plain traceback.
with without("rich"):
    import structlog

FORMATS = ("auto", "json", "console")
#: probe and scrape paths whose successful access lines are dropped (one every few seconds)
QUIET_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})


def resolve(fmt: str) -> str:
    """'json' or 'console': 'auto' is console on a terminal, JSON otherwise."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "auto":
        return "console" if sys.stderr.isatty() else "json"
    return fmt


def _access_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """uvicorn's access line as fields: client, method, path, status."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    if record is not None and record.name == "uvicorn.access" and args and len(args) == 5:
        client, method, path, _version, status = args
        event.update(client=client, method=method, path=path, status=status)
        event["event"] = "request"
    return event


def _trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    ids = tracing.current_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


def formatter(fmt: str = "auto") -> structlog.stdlib.ProcessorFormatter:
    """The formatter every handler uses (a logging.config factory: `()`)."""
    fmt = resolve(fmt)
    pre_chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        context.merge,
        _trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        # The pid tells `serve --workers N`'s processes apart.
        structlog.processors.CallsiteParameterAdder(
            [structlog.processors.CallsiteParameter.PROCESS]
        ),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _access_fields,
    ]
    renderer: list[Any]
    if fmt == "json":
        renderer = [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        pass_foreign_args=True,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )


class QuietProbes(logging.Filter):
    """Drops successful access lines of health probes and metric scrapes."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a 2xx access line of /healthz, /livez, /readyz or /metrics."""
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            path, status = args[2], args[4]
            if isinstance(status, int) and status < 300 and path in QUIET_PATHS:
                return False
        return True


class Demote(logging.Filter):
    """Writes a logger's INFO lines at DEBUG: httpx's line per request (each Vaka page)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote an INFO record; keep it only if its logger is enabled for DEBUG."""
        if record.levelno != logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def config(level: str = "info", fmt: str = "auto") -> dict[str, Any]:
    """A logging.config dict: one stderr handler, one format, uvicorn's loggers through it."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "writegate": {"()": "writegate.core.observability.logging.formatter", "fmt": fmt}
        },
        "filters": {
            "quiet_probes": {"()": "writegate.core.observability.logging.QuietProbes"},
            "demote": {"()": "writegate.core.observability.logging.Demote"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "writegate",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True, "filters": ["quiet_probes"]},
            "httpx": {"filters": ["demote"]},
            # Alembic narrates every plugin it loads; only its warnings matter to an operator.
            "alembic": {"level": "WARNING"},
        },
    }


def setup_logging(level: str = "info", fmt: str = "auto") -> dict[str, Any]:
    """Configure this process's logging; the config, for uvicorn to apply in its workers."""
    resolve(fmt)  # a bad format fails here, not in a worker process
    cfg = config(level, fmt)
    logging.config.dictConfig(cfg)
    return cfg
