"""The one source of "now" (naive UTC), shiftable by tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall clock in naive UTC with an adjustable offset for tests."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the current naive UTC time, offset applied."""
        return datetime.now(UTC).replace(tzinfo=None) + self._offset

    def advance(self, delta: timedelta) -> None:
        """Move this clock forward (or back) by delta."""
        with self._lock:
            self._offset += delta

    def reset(self) -> None:
        """Drop any offset."""
        with self._lock:
            self._offset = timedelta(0)
