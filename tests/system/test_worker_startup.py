"""A standalone worker loads every module's job side and none of the web: no FastAPI, no routes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.harness import Server, vacuum_settings, wait_for
from writegate.core.maintenance import VACUUM_SETTINGS
from writegate.settings import ALL_MODULES

PROBE = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write("\\nLOADED " + json.dumps(sorted(sys.modules)) + "\\n"))
from writegate.cli import main
sys.argv = ["writegate", "worker", "--concurrency", "1"]
main()
"""
#: what only `serve` needs: the web framework, the app, the console, a module's web side
WEB = ("fastapi", "starlette", "uvicorn", "jinja2", "writegate.app", "writegate.console")
WEB_SIDE = re.compile(r"writegate\.modules\.\w+\.(routes|errors|console|access|bodies)$")


def _job_status(server: Server, job_id: str) -> str | None:
    with server.client() as c:
        view = c.get("/jef-one-get-job-by-job-id", params={"job_id": job_id}).json()
    status = view["job_status"]
    return status if status in ("succeeded", "failed", "cancelled") else None


def test_worker_runs_jobs_without_loading_the_web_side(bare_server: Server, tmp_path: Path) -> None:
    """A worker with every bundled module runs a jef-one job, never importing FastAPI or routes."""
    with bare_server.client() as c:  # a database of its own: any entity number is new
        r = c.post("/one-entities-post-one", json={"entity_number": "1001", "entity_name": "x"})
    assert r.status_code == 202, r.text
    env = {**bare_server.env, "WRITEGATE_MODULES": json.dumps(list(ALL_MODULES))}
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: _job_status(bare_server, r.json()["job_id"]), 60) == "succeeded"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    [line] = [x for x in err.splitlines() if x.startswith("LOADED ")]
    loaded: list[str] = json.loads(line.removeprefix("LOADED "))
    assert "writegate.modules.bokamera.handlers" in loaded  # every module's job side is there
    assert "writegate.modules.ikonomikal.housekeeping" in loaded
    assert [m for m in loaded if m.split(".")[0] in WEB or m.startswith(WEB)] == []
    assert [m for m in loaded if WEB_SIDE.match(m)] == []
    assert "rich" not in loaded  # structlog would load it (see core/observability/logging.py)
    # It warns, as `serve` does, of a PostgreSQL that never vacuums its tables.
    off = [name for name, value in vacuum_settings(bare_server).items() if value != "on"]
    assert [n for n in VACUUM_SETTINGS if f"PostgreSQL's {n} is off" in err] == off
