"""Starting, watching and stopping the processes a benchmark needs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
MODULES = json.dumps(["bench.noop_module"])
CLI = ["-c", "from writegate.cli import main; main()"]


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(**extra: str) -> dict[str, str]:
    """This environment plus the repository on the import path and the given variables."""
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "WRITEGATE_MODULES": MODULES,
        "WRITEGATE_LOG_LEVEL": "warning",
        **extra,
    }


def spawn(args: list[str], **extra: str) -> subprocess.Popen[bytes]:
    """Start `python ARGS` in the repository root with the bench environment."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env(**extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_http(url: str, timeout: float = 60.0) -> None:
    """Wait until a server answers on url."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1.0)
            return
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not start")


def peak_rss_mb(proc: subprocess.Popen[bytes], *, children: bool = False) -> float:
    """Peak resident set (VmHWM) of a process, or the largest of it and its children."""
    pids = [proc.pid]
    if children:
        with contextlib.suppress(psutil.Error):
            pids += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    best = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
    return best


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process groups we started, then SIGKILL whatever is left."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


@contextlib.contextmanager
def running(*procs: subprocess.Popen[bytes]) -> Iterator[tuple[subprocess.Popen[bytes], ...]]:
    """Stop the processes when the block ends, whatever happens."""
    try:
        yield procs
    finally:
        stop(*procs)


def writegate_serve(
    db_url: str, port: int, *, worker: bool, **extra: str
) -> subprocess.Popen[bytes]:
    """`writegate serve` with the bench module."""
    args = [*CLI, "serve", "--port", str(port)]
    if not worker:
        args.append("--no-worker")
    return spawn(args, WRITEGATE_DATABASE_URL=db_url, **extra)


def writegate_worker(db_url: str, **extra: str) -> subprocess.Popen[bytes]:
    """One standalone `writegate worker` process."""
    return spawn([*CLI, "worker"], WRITEGATE_DATABASE_URL=db_url, **extra)
