"""How long `writegate` commands take to start, against baselines measured in the same run.

    .venv/bin/python bench/cli_startup.py [--runs 15] [--pg-url postgresql://postgres@HOST/postgres]

Every command runs `--runs` times, interleaved round-robin so that load from other work on
the machine hits every command alike; the figure is the median wall time of a whole process.
`jobs list` and `principals list` run on a migrated SQLite file, on a missing one, and with
`--pg-url` on a fresh migrated PostgreSQL database (created and dropped here). Baselines:
`python -c pass` (the interpreter), `celery --version` if installed, the imports a database
command cannot avoid (typer, pydantic-settings for the settings, SQLAlchemy Core, and the
PostgreSQL driver there), and the ORM the list commands no longer load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent
FLOOR = "import typer, pydantic_settings, sqlalchemy"

Command = tuple[list[str], dict[str, str]]


def _baselines(env: dict[str, str], pg: bool) -> dict[str, Command]:
    py = sys.executable
    out: dict[str, Command] = {"python -c pass": ([py, "-c", "pass"], env)}
    celery = shutil.which("celery", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if celery:
        out["celery --version"] = ([celery, "--version"], env)
    out[f"python -c '{FLOOR}'"] = ([py, "-c", FLOOR], env)
    if pg:
        out[f"python -c '{FLOOR}, psycopg'"] = ([py, "-c", FLOOR + ", psycopg"], env)
    orm = "import typer, pydantic_settings, sqlalchemy.orm"
    out[f"python -c '{orm}'"] = ([py, "-c", orm], env)
    return out


def _commands(
    sqlite: dict[str, str], missing: dict[str, str], pg: dict[str, str] | None
) -> dict[str, Command]:
    writegate = [str(BIN / "writegate")]
    out = _baselines(sqlite, pg is not None)
    for args in (["--help"], ["--version"], ["jobs", "--help"], ["principals", "--help"]):
        out["writegate " + " ".join(args)] = (writegate + args, sqlite)
    for where, env in (("no SQLite file", missing), ("SQLite", sqlite), ("PostgreSQL", pg)):
        if env is not None:
            for args in (["jobs", "list"], ["principals", "list"]):
                out[f"writegate {' '.join(args)} ({where})"] = (writegate + args, env)
    return out


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    """A fresh PostgreSQL database for the run, dropped afterwards."""
    if url is None:
        yield None
        return
    import psycopg

    name = f"bench_cli_{uuid.uuid4().hex[:8]}"
    admin = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _migrate(env: dict[str, str], cwd: str) -> None:
    subprocess.run(
        [str(BIN / "writegate"), "migrate"], env=env, check=True, cwd=cwd, stdout=subprocess.DEVNULL
    )


def _time(commands: dict[str, Command], runs: int, cwd: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs + 1):  # the first round warms the caches and is dropped
        for name, (argv, env) in commands.items():
            start = time.perf_counter()
            subprocess.run(
                argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            times[name].append(time.perf_counter() - start)
    return {name: t[1:] for name, t in times.items()}


def main() -> None:
    """Print the median start-up time of each command next to the baselines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pg-url", help="a PostgreSQL server to create a scratch database on")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("WRITEGATE_")}
    with tempfile.TemporaryDirectory() as workdir, _postgres(args.pg_url) as pg_url:
        sqlite = {**base, "WRITEGATE_DATABASE_URL": f"sqlite:///{workdir}/bench.db"}
        missing = {**base, "WRITEGATE_DATABASE_URL": f"sqlite:///{workdir}/missing.db"}
        pg = {**base, "WRITEGATE_DATABASE_URL": pg_url} if pg_url else None
        for env in (sqlite, pg):
            if env is not None:
                _migrate(env, workdir)
        load = os.getloadavg()[0]
        times = _time(_commands(sqlite, missing, pg), args.runs, workdir)
    medians = {name: statistics.median(t) for name, t in times.items()}
    floor = medians[f"python -c '{FLOOR}'"]
    print(f"{'command':<66} {'median ms':>10} {'min ms':>8} {'x floor':>8}")
    for name, t in times.items():
        ms, best, ratio = medians[name] * 1000, min(t) * 1000, medians[name] / floor
        print(f"{name:<66} {ms:>10.0f} {best:>8.0f} {ratio:>8.2f}")
    print(
        f"({args.runs} runs each, interleaved; {os.cpu_count()} CPUs, "
        f"load {load:.2f} before, {os.getloadavg()[0]:.2f} after; floor = python -c '{FLOOR}')"
    )


if __name__ == "__main__":
    main()
