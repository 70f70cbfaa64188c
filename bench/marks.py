"""Fixed-width timestamp marks appended by every system's handler (one line per job run)."""

from __future__ import annotations

import os
import time

#: "1763913709.123456\n": fixed width, so the line count is the file size / LINE
LINE = 18
_fds: dict[str, int] = {}


def mark() -> None:
    """Append the current wall-clock time to $BENCH_MARKS, if set."""
    path = os.environ.get("BENCH_MARKS")
    if not path:
        return
    fd = _fds.get(path)
    if fd is None:
        fd = _fds[path] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, b"%17.6f\n" % time.time())


def count(path: str) -> int:
    """How many marks the file holds."""
    try:
        return os.path.getsize(path) // LINE
    except FileNotFoundError:
        return 0


def read(path: str) -> list[float]:
    """Every mark, in file order."""
    with open(path, "rb") as f:
        return [float(line) for line in f.read().splitlines() if line.strip()]
