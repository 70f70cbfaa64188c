"""Periodic housekeeping (expired tokens, stale sessions) run next to a worker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger("writegate.maintenance")

Task = Callable[[], int | None]


class Maintenance:
    """Runs each task every `interval` seconds in one background thread."""

    def __init__(self, tasks: Sequence[tuple[str, Task]], interval: float = 300.0) -> None:
        self.tasks = list(tasks)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int | None]:
        """Run every task now; a failing task is logged and does not stop the others."""
        done: dict[str, int | None] = {}
        for name, task in self.tasks:
            try:
                done[name] = task()
            except Exception:
                log.exception("maintenance task %s failed", name)
        return done

    def start(self) -> None:
        """Start the background thread (first pass after one interval)."""
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
        while not self._stop.wait(self.interval):
            self.run_once()
