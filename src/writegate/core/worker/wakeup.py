"""The in-process wake-up: a self-pipe a worker waits on, with its LISTEN socket if any."""

from __future__ import annotations

import contextlib
import os
import select
import threading


class Wakeup:
    """An in-process signal that new work may be due; a wait may also watch one socket."""

    # A self-pipe rather than a threading.Event: the dispatcher's one poll() then also watches
    # its LISTEN socket on PostgreSQL, so a NOTIFY wakes it with no thread hand-off.
    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._lock = threading.Lock()
        self._closed = False
        self._pending = False

    def set(self) -> None:
        """Wake any waiting worker."""
        with self._lock:
            # One pending byte is enough: no syscall per commit when no one is waiting.
            if self._closed or self._pending:
                return
            self._pending = True
            with contextlib.suppress(BlockingIOError):
                os.write(self._w, b"\0")

    @property
    def pending(self) -> bool:
        """Whether a set() came since the last clear()."""
        return self._pending

    def wait(self, timeout: float, fd: int | None = None) -> bool:
        """Wait for a wake-up not yet cleared, for `fd` to be readable or for the timeout;
        report if woken."""
        if self._closed:
            return True  # shutting down: the caller's loop is about to see its stop flag
        poller = select.poll()
        poller.register(self._r, select.POLLIN)
        if fd is not None:
            poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0.0, timeout) * 1000))

    def clear(self) -> None:
        """Consume the wake-ups so far: the caller is about to look for work, which covers
        them; a set() after this wakes the next wait."""
        if self._closed:
            return
        with contextlib.suppress(OSError):  # BlockingIOError once empty
            while os.read(self._r, 4096):
                pass
        with self._lock:
            self._pending = False

    def close(self) -> None:
        """Release the pipe; later set() calls do nothing."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._r)
                os.close(self._w)
