"""A loop's failures in the log: the first with its traceback, a repeat once a minute."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class Failures:
    """What a worker loop logs while one failure repeats (a database outage fails every
    claim): its traceback once, then one line a minute with the count, then its recovery."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.what = what
        self.every = every
        self.clock = clock
        self._count = 0
        self._last: tuple[type[BaseException], str] | None = None
        self._logged_at = 0.0

    def failed(self, exc: BaseException) -> None:
        """Log a failure (call from the `except` block that caught exc)."""
        self._count += 1
        now = self.clock()
        same = self._last == (type(exc), str(exc))
        if not same:
            self.log.exception("%s failed", self.what)
        elif now - self._logged_at >= self.every:
            self.log.warning(
                "%s still failing (%d times so far): %s: %s",
                self.what,
                self._count,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
        else:
            return
        self._last, self._logged_at = (type(exc), str(exc)), now

    def succeeded(self) -> None:
        """Note a success: the recovery is logged once after failures."""
        if self._count:
            self.log.warning("%s recovered after %d failures", self.what, self._count)
            self._count, self._last = 0, None
