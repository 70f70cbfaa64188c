"""Handler threads kept between jobs (core/worker/threads.py)."""

from __future__ import annotations

import contextvars
import threading
import time

from tests.harness import wait_for
from writegate.core.worker.threads import HandlerThreads

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


def _alive(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_a_thread_runs_the_next_call_once_it_is_idle() -> None:
    """Regression: a thread started per job made the dispatcher wait each time for the new
    thread to win the GIL from the commit threads (threaded drains 30-130% slower)."""
    pool = HandlerThreads("test-reuse")
    idents: list[int] = []
    for _ in range(5):
        done = threading.Event()
        pool.run(lambda d=done: (idents.append(threading.get_ident()), d.set()))
        assert done.wait(5)
        wait_for(lambda: pool._idle == 1, timeout=5, interval=0.001)
    assert len(set(idents)) == 1
    pool.close()


def test_a_busy_thread_is_not_waited_for_a_new_one_runs_the_call() -> None:
    pool = HandlerThreads("test-busy")
    release = threading.Event()
    started = threading.Event()
    pool.run(lambda: (started.set(), release.wait(10)))
    assert started.wait(5)
    ran = threading.Event()
    pool.run(ran.set)  # the first thread is still busy (a hung handler, say)
    assert ran.wait(5)
    assert len(_alive("test-busy")) == 2
    release.set()
    pool.close()
    wait_for(lambda: not _alive("test-busy"), timeout=5)


def test_idle_threads_leave_after_lingering() -> None:
    pool = HandlerThreads("test-linger", linger=0.05)
    calls = [threading.Event() for _ in range(3)]
    release = threading.Event()
    for call in calls:
        pool.run(lambda c=call: (c.set(), release.wait(10)))
    assert all(c.wait(5) for c in calls)
    assert len(_alive("test-linger")) == 3
    release.set()
    wait_for(lambda: not _alive("test-linger"), timeout=5)
    ran = threading.Event()
    pool.run(ran.set)  # a new thread again
    assert ran.wait(5)
    pool.close()


def test_close_lets_idle_threads_leave_and_later_calls_run_on_threads_that_leave() -> None:
    """A worker stopping closes its threads; a job its dispatcher claimed meanwhile still runs."""
    pool = HandlerThreads("test-close")
    done = threading.Event()
    pool.run(done.set)
    assert done.wait(5)
    wait_for(lambda: pool._idle == 1, timeout=5, interval=0.001)
    pool.close()
    wait_for(lambda: not _alive("test-close"), timeout=5)
    late = threading.Event()
    pool.run(late.set)
    assert late.wait(5)
    wait_for(lambda: not _alive("test-close"), timeout=5)
    assert pool._idle == 0


def test_each_call_starts_in_a_fresh_context() -> None:
    """A job's context variables (log fields, a trace) never leak into the next job's."""
    pool = HandlerThreads("test-context")
    values: list[str] = []
    for value in ("first", "second"):
        done = threading.Event()

        def call(v: str = value, d: threading.Event = done) -> None:
            values.append(seen.get())
            seen.set(v)
            d.set()

        pool.run(call)
        assert done.wait(5)
        wait_for(lambda: pool._idle == 1, timeout=5, interval=0.001)
    assert values == ["unset", "unset"]
    pool.close()


def test_calls_queued_while_an_idle_thread_lingers_out_are_all_run() -> None:
    """An idle thread whose linger ends as a call is queued for it does not leave it behind."""
    pool = HandlerThreads("test-race", linger=0.001)
    ran = 0
    lock = threading.Lock()

    def count() -> None:
        nonlocal ran
        with lock:
            ran += 1

    for _ in range(300):
        pool.run(count)
        time.sleep(0.0005)
    wait_for(lambda: ran == 300, timeout=10, interval=0.01)
    pool.close()
