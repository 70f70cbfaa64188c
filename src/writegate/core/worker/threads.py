"""Handler threads kept between jobs: a job starts on an idle one, a new one only if none is."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any

#: what an idle thread takes to leave (`close`)
_LEAVE = None


class HandlerThreads:
    """Daemon threads that each run one call at a time and then wait for the next.

    Starting a thread per job made the dispatcher wait, each time, for the new thread to win
    the GIL from the busy commit threads. A thread that never returns (a hung handler) is
    simply not idle again: the next call gets a new thread, so the worker's own count of
    running jobs stays its only limit. An idle thread leaves after `linger` seconds.
    """

    def __init__(self, name: str, linger: float = 60.0) -> None:
        self._name = name
        self._linger = linger
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None]
        self._calls = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: threads waiting for a call that no call counts on yet
        self._idle = 0
        self._closed = False

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call fn(*args) on an idle thread, or on a new one; it must handle its exceptions.

        After `close`, on a new thread that leaves when the call returns.
        """
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._calls.put((fn, args))
        if spawn:
            threading.Thread(target=self._serve, name=self._name, daemon=True).start()

    def close(self) -> None:
        """Let the idle threads leave; busy ones leave when their call returns."""
        with self._lock:
            idle, self._idle, self._closed = self._idle, 0, True
        for _ in range(idle):
            self._calls.put(_LEAVE)

    def _serve(self) -> None:
        while True:
            try:
                call = self._calls.get(timeout=self._linger)
            except queue.Empty:
                with self._lock:
                    if self._idle == 0:
                        continue  # a call counts on this thread: it is queued or about to be
                    self._idle -= 1
                return
            if call is _LEAVE:
                return
            fn, args = call
            # A fresh context per call, as a new thread has: nothing a job set leaks into the next.
            contextvars.Context().run(fn, *args)
            with self._lock:
                if self._closed:
                    return
                self._idle += 1
