"""How long `writegate` commands take to start, against baselines measured in the same run.

    .venv/bin/python bench/cli_startup.py [--runs 15] [--pg-url postgresql://postgres@HOST/postgres]

Every command runs `--runs` times, interleaved round-robin so that load from other work on
the machine hits every command alike; the figure is the median wall time of a whole process.
Every `jobs` and `principals` command runs on a migrated SQLite file and with `--pg-url` on a
fresh migrated PostgreSQL database (created and dropped here): `jobs show`, then `cancel` and
`retry` of one queued job (so each round both succeed), `prune` (nothing old to delete),
`principals create` and `revoke` of a new principal each round; the list commands also on a
missing SQLite file. Baselines:
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


#: the list commands, and those that act (JOB: a queued job; ROUND: this round's number)
LISTS = (["jobs", "list"], ["principals", "list"])
ACTS = (
    ["jobs", "show", "JOB"],
    ["jobs", "cancel", "JOB"],
    ["jobs", "retry", "JOB"],
    ["jobs", "prune", "--older-than", "7d"],
    ["principals", "create", "--name", "p-ROUND", "--tenant", "bench"],
    ["principals", "revoke", "p-ROUND"],
)


def _commands(
    sqlite: dict[str, str], missing: dict[str, str], pg: dict[str, str] | None
) -> dict[str, Command]:
    writegate = [str(BIN / "writegate")]
    out = _baselines(sqlite, pg is not None)
    for args in (["--help"], ["--version"], ["jobs", "--help"], ["principals", "--help"]):
        out["writegate " + " ".join(args)] = (writegate + args, sqlite)
    for where, env in (("no SQLite file", missing), ("SQLite", sqlite), ("PostgreSQL", pg)):
        if env is not None:
            for args in LISTS if env is missing else LISTS + ACTS:
                shown = " ".join(args).replace("JOB", "<job>").replace("ROUND", "<n>")
                out[f"writegate {shown} ({where})"] = (writegate + args, env)
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


def _migrate(env: dict[str, str], cwd: str) -> str:
    """Migrate the database; a queued job on it (of a kind no worker takes)."""
    subprocess.run(
        [str(BIN / "writegate"), "migrate"], env=env, check=True, cwd=cwd, stdout=subprocess.DEVNULL
    )
    from writegate.core.services import Services
    from writegate.settings import Settings

    services = Services.build(Settings(database_url=env["WRITEGATE_DATABASE_URL"], modules=[]))
    try:
        with services.db.write() as s:
            return services.jobs.enqueue(s, kind="bench.idle", payload={}, tenant="bench").id
    finally:
        services.close()


def _time(
    commands: dict[str, Command], jobs: dict[str, str], runs: int, cwd: str
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for n in range(runs + 1):  # the first round warms the caches and is dropped
        for name, (argv, env) in commands.items():
            job = jobs.get(env["WRITEGATE_DATABASE_URL"], "")
            args = [a.replace("JOB", job).replace("ROUND", str(n)) for a in argv]
            start = time.perf_counter()
            done = subprocess.run(
                args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0 and "no SQLite file" not in name:
                sys.exit(f"{name} failed: {done.stderr.decode(errors='replace')}")
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
        jobs = {
            env["WRITEGATE_DATABASE_URL"]: _migrate(env, workdir)
            for env in (sqlite, pg)
            if env is not None
        }
        load = os.getloadavg()[0]
        times = _time(_commands(sqlite, missing, pg), jobs, args.runs, workdir)
    medians = {name: statistics.median(t) for name, t in times.items()}
    floor = medians[f"python -c '{FLOOR}'"]
    print(f"{'command':<72} {'median ms':>10} {'min ms':>8} {'x floor':>8}")
    for name, t in times.items():
        ms, best, ratio = medians[name] * 1000, min(t) * 1000, medians[name] / floor
        print(f"{name:<72} {ms:>10.0f} {best:>8.0f} {ratio:>8.2f}")
    print(
        f"({args.runs} runs each, interleaved; {os.cpu_count()} CPUs, "
        f"load {load:.2f} before, {os.getloadavg()[0]:.2f} after; floor = python -c '{FLOOR}')"
    )


if __name__ == "__main__":
    main()
