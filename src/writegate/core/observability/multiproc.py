"""Prometheus multi-process mode for `serve --workers N`, set up before prometheus loads."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """Whether metrics are kept in files shared by several processes."""
    return bool(os.environ.get(ENV))


def prepare(workers: int) -> str | None:
    """The directory of multi-process metrics for a server with `workers` processes.

    The operator's PROMETHEUS_MULTIPROC_DIR if set (created if missing); else, for more than
    one worker, a new temporary directory (removed at exit), exported to the workers. Must
    run before prometheus-client is imported.
    """
    path = os.environ.get(ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        return path
    if workers <= 1:
        return None
    path = tempfile.mkdtemp(prefix="writegate-metrics-")
    atexit.register(shutil.rmtree, path, True)
    os.environ[ENV] = path
    return path
