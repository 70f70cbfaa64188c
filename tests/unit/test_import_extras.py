"""Libraries that load an installed extra on import get it hidden: click, rich and pygments
stay out."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import typer  # as every writegate process (typer has its own click): click and rich are not
from writegate.core.observability import logging as wg_logging
from writegate.modules.bokamera import connector
connector.tls_context()  # a sync's first Vaka call imports httpx
loaded = sorted(m for m in ("click", "rich", "pygments", "httpx", "structlog") if m in sys.modules)
import click, rich  # still importable once the imports are done
print(json.dumps(loaded))
"""


def test_regression_httpx_and_structlog_load_no_click_rich_or_pygments() -> None:
    """httpx's command line (click, rich, pygments: 1-3 MB) was loaded by every process that
    synced; click still by a worker's, after typer stopped loading it."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["httpx", "structlog"]
