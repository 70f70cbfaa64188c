"""Fault-injection helpers: a killable `writegate serve` process and a private PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.harness import FAST, free_port, spawn, stop_processes, wait_for

PG_BIN = "/usr/lib/postgresql/15/bin"
RUN_AS_PG = ("runuser", "-u", "postgres", "--")


def serve_env(db_url: str, modules: list[str], **overrides: Any) -> dict[str, str]:
    """WRITEGATE_* variables for a spawned process on db_url with the fast test settings."""
    values = {**FAST, "database_url": db_url, "modules": modules, **overrides}
    return {
        f"WRITEGATE_{k.upper()}": json.dumps(v) if isinstance(v, list | dict | bool) else str(v)
        for k, v in values.items()
    }


@dataclass
class ServeProcess:
    """A `writegate serve` OS process that a test may SIGKILL and start again."""

    env: dict[str, str]
    log: str
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Start the process and wait until /healthz answers 200."""
        self.proc = spawn(["serve", "--port", str(self.port)], self.env, log=self.log)

        def healthy() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, self.tail()
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(healthy, timeout, interval=0.1)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), killing if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_processes([self.proc], grace=20)

    def rss_kib(self) -> int:
        """Resident set size of the server process, in KiB."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def tail(self, n: int = 4000) -> str:
        """The end of the server's log, for assertion messages."""
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


@contextmanager
def serve_process(env: dict[str, str], log: str) -> Iterator[ServeProcess]:
    """A started serve process, stopped afterwards whatever happens."""
    srv = ServeProcess(env=env, log=log, port=free_port())
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@dataclass
class PrivateCluster:
    """A throw-away PostgreSQL cluster owned by one test (never the shared one)."""

    data_dir: str
    port: int

    @property
    def url(self) -> str:
        """Connection URL of its `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*RUN_AS_PG, f"{PG_BIN}/pg_ctl", "-D", self.data_dir, *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        opts = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", opts, "-l", f"{self.data_dir}/server.log", "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop it; `immediate` is a crash as far as clients can tell."""
        self._ctl("-m", mode, "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivateCluster]:
    """initdb a new cluster in a temporary directory, start it, remove it afterwards."""
    import pwd

    pg = pwd.getpwnam("postgres")
    # Short path: the Unix socket lives in the data directory (108-byte path limit).
    data_dir = tempfile.mkdtemp(prefix="wgpg-", dir="/tmp")
    os.chown(data_dir, pg.pw_uid, pg.pw_gid)
    subprocess.run(
        [*RUN_AS_PG, f"{PG_BIN}/initdb", "-D", data_dir, "-A", "trust", "-U", "postgres", "-N"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    cluster = PrivateCluster(data_dir=data_dir, port=free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped by the test
            cluster.stop("fast")
        shutil.rmtree(data_dir, ignore_errors=True)
