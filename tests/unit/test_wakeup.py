"""The worker's wake-up signal: a self-pipe its dispatcher waits on, with one socket."""

from __future__ import annotations

import socket
import threading
import time

from writegate.core.worker import Wakeup


def test_sets_before_a_clear_are_consumed_by_it_and_a_later_set_wakes_the_next_wait() -> None:
    w = Wakeup()
    try:
        for _ in range(100_000):  # more than a pipe holds: a serve with no worker never waits
            w.set()
        assert w.wait(5.0) is True
        assert w.wait(0) is True  # a wait does not consume: the claim after it clears
        w.clear()
        started = time.monotonic()
        assert w.wait(0.05) is False  # every set was consumed by the one clear
        w.set()
        assert w.wait(5.0) is True  # and the next set wakes the next wait
        assert time.monotonic() - started >= 0.04
    finally:
        w.close()


def test_a_set_from_another_thread_ends_a_long_wait() -> None:
    w = Wakeup()
    try:
        threading.Timer(0.05, w.set).start()
        started = time.monotonic()
        assert w.wait(30.0) is True
        assert time.monotonic() - started < 10
    finally:
        w.close()


def test_a_readable_socket_ends_the_wait_and_stays_the_callers_to_read() -> None:
    w = Wakeup()
    a, b = socket.socketpair()
    try:
        assert w.wait(0.01, a.fileno()) is False
        b.send(b"x")
        assert w.wait(30.0, a.fileno()) is True
        assert a.recv(1) == b"x"
    finally:
        a.close()
        b.close()
        w.close()


def test_after_close_set_does_nothing_and_wait_returns_at_once() -> None:
    w = Wakeup()
    w.close()
    w.close()
    w.set()  # a handler thread that outlives its worker must not write to a reused fd
    w.clear()  # nor a dispatcher still draining read one
    started = time.monotonic()
    assert w.wait(30.0) is True  # a dispatcher still draining must not poll a closed fd
    assert time.monotonic() - started < 10
