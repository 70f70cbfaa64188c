"""Periodic housekeeping (expired tokens, stale sessions) run next to a worker, and the
database server's own upkeep it relies on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import text

from writegate.core.db import Database

log = logging.getLogger("writegate.maintenance")

#: PostgreSQL's settings without which nothing vacuums or analyzes writegate's tables
VACUUM_SETTINGS = ("autovacuum", "track_counts")
_SETTINGS = text("SELECT name, setting FROM pg_settings WHERE name = ANY(:names)")

Task = Callable[[], int | None]


class Maintenance:
    """Runs each task every `interval` seconds in one background thread, and each of
    `checks` once as the thread starts (a database that is down then delays no start-up)."""

    def __init__(
        self,
        tasks: Sequence[tuple[str, Task]],
        interval: float = 300.0,
        checks: Sequence[tuple[str, Task]] = (),
    ) -> None:
        self.tasks = list(tasks)
        self.checks = list(checks)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int | None]:
        """Run every task now; a failing task is logged and does not stop the others."""
        return _run(self.tasks)

    def start(self) -> None:
        """Start the background thread: the checks at once, the tasks after one interval."""
        self._thread = threading.Thread(
            target=self._loop, name="writegate-maintenance", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        _run(self.checks)
        while not self._stop.wait(self.interval):
            self.run_once()


def _run(tasks: Sequence[tuple[str, Task]]) -> dict[str, int | None]:
    """Each task's result by name; a failing task is logged and does not stop the others."""
    done: dict[str, int | None] = {}
    for name, task in tasks:
        try:
            done[name] = task()
        except Exception:
            log.exception("maintenance task %s failed", name)
    return done


def vacuum_warnings(settings: Mapping[str, str]) -> list[str]:
    """Why PostgreSQL will not vacuum writegate's tables: a line per setting that is off."""
    return [
        f"PostgreSQL's {name} is off: nothing vacuums or analyzes writegate's tables, so "
        "every job's claim and completion leaves a dead row behind, the tables and indexes "
        "grow and the plans go stale; turn it on, or run VACUUM ANALYZE on them regularly"
        for name in VACUUM_SETTINGS
        if settings.get(name, "on") != "on"
    ]


def check_vacuum(db: Database) -> int:
    """Log `vacuum_warnings` of db's server (none on SQLite); how many there were."""
    if not db.is_postgres:
        return 0
    with db.read() as s:
        rows = s.execute(_SETTINGS, {"names": list(VACUUM_SETTINGS)}).all()
        warnings = vacuum_warnings(dict(rows))
    for warning in warnings:
        log.warning(warning)
    return len(warnings)
