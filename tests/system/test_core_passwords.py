"""Password checks: right answers under concurrency, with argon2's memory bounded."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.harness import Server, uid


class _Spy:
    """The real hasher, counting how many verifications run at once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return bool(self.inner.verify(stored, password))
        finally:
            with self.lock:
                self.now -= 1

    def hash(self, password: str) -> str:
        return str(self.inner.hash(password))


def test_concurrent_password_checks_are_right_and_bounded(
    server: Server, make_principal: Any
) -> None:
    """Many logins at once all get the right answer; at most one argon2 per CPU runs."""
    auth = server.services.auth
    name = uid("pw-")
    make_principal(name=name, password="right-one")
    cases = [(name, "right-one", True), (name, "wrong", False), (uid("nobody-"), "x", False)]
    spy = _Spy(auth._hasher)
    auth._hasher = spy

    def check(case: tuple[str, str, bool]) -> bool:
        with server.services.db.read() as s:
            return (auth.verify_password(s, case[0], case[1]) is not None) == case[2]

    try:
        with ThreadPoolExecutor(12) as pool:
            assert all(pool.map(check, cases * 4))
    finally:
        auth._hasher = spy.inner
    assert 1 <= spy.most <= (os.cpu_count() or 1)
