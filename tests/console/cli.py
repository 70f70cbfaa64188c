"""Run the jobs CLI (`writegate.console.jobs_cli`) as a separate process, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.harness import Server


def jobs_cli(
    server: Server, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`writegate jobs ARGS` against the server's database."""
    env = {
        **os.environ,
        "WRITEGATE_DATABASE_URL": server.settings.database_url,
        "WRITEGATE_MODULES": json.dumps(server.settings.modules),
        "COLUMNS": "80",
    }
    return subprocess.run(
        [sys.executable, "-c", "from writegate.console.jobs_cli import main; main()", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
