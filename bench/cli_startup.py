"""How long `writegate` commands take to start, against baselines measured in the same run.

    .venv/bin/python bench/cli_startup.py [--runs 15]

Every command runs `--runs` times, interleaved round-robin so that load from other work on
the machine hits every command alike; the figure is the median wall time of a whole process.
Baselines: `python -c pass` (the interpreter), `celery --version` if installed, and the
imports a database command cannot avoid (SQLAlchemy's ORM and pydantic-settings).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _commands() -> dict[str, list[str]]:
    py = sys.executable
    writegate = [str(BIN / "writegate")]
    commands = {"python -c pass": [py, "-c", "pass"]}
    celery = shutil.which("celery", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if celery:
        commands["celery --version"] = [celery, "--version"]
    commands["python -c 'import sqlalchemy.orm, pydantic_settings'"] = [
        py,
        "-c",
        "import sqlalchemy.orm, pydantic_settings",
    ]
    for args in (
        ["--help"],
        ["--version"],
        ["jobs", "--help"],
        ["principals", "--help"],
        ["jobs", "list", "--help"],
        ["jobs", "list"],
        ["principals", "list"],
    ):
        commands["writegate " + " ".join(args)] = writegate + args
    return commands


def main() -> None:
    """Print the median start-up time of each command next to the baselines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as workdir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WRITEGATE_")}
        env["WRITEGATE_DATABASE_URL"] = f"sqlite:///{workdir}/bench.db"
        subprocess.run(
            [str(BIN / "writegate"), "migrate"],
            env=env,
            check=True,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
        )
        commands = _commands()
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs + 1):  # the first round warms the caches and is dropped
            for name, argv in commands.items():
                start = time.perf_counter()
                subprocess.run(
                    argv,
                    env=env,
                    cwd=workdir,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t[1:]) for name, t in times.items()}
    celery = medians.get("celery --version")
    print(f"{'command':<58} {'median ms':>10} {'min ms':>8} {'x celery':>9}")
    for name, t in times.items():
        ratio = f"{medians[name] / celery:.2f}" if celery else "-"
        print(f"{name:<58} {medians[name] * 1000:>10.0f} {min(t[1:]) * 1000:>8.0f} {ratio:>9}")
    print(f"({runs} runs each, interleaved; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
