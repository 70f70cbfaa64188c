"""Run `writegate ...` as a separate process: only WRITEGATE_* variables, or a server's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.harness import Server

ENTRY = ["-c", "from writegate.cli import main; main()"]


def run_cli(
    *args: str, cwd: str | Path, timeout: float = 120, **settings: str
) -> subprocess.CompletedProcess[str]:
    """`writegate ARGS` in cwd; settings are WRITEGATE_* variables (the rest are dropped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRITEGATE_")}
    env.update(settings)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, *ENTRY, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line(stderr: str) -> str:
    """The single non-empty line of stderr (fails if there are more or none)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def writegate(
    server: Server, *args: str, stdin: str | None = None, columns: int = 80
) -> subprocess.CompletedProcess[str]:
    """`writegate ARGS` against the server's database, output through a pipe, 80 columns."""
    env = {
        **os.environ,
        "WRITEGATE_DATABASE_URL": server.settings.database_url,
        "WRITEGATE_MODULES": json.dumps(server.settings.modules),
        "COLUMNS": str(columns),
    }
    return subprocess.run(
        [sys.executable, *ENTRY, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
