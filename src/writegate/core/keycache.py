"""A short-lived in-process cache of API-key digests to principals."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from writegate.core.auth import Principal


class PrincipalCache:
    """Known API keys (by digest) for `ttl` seconds, at most `size` of them.

    Only keys that authenticated are kept, so an unknown key always reaches the database
    and a new key works at once. A revocation in this process clears the cache when it
    commits; one in another process is seen here within `ttl`.
    """

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | None:
        """The principal of a key digest seen less than `ttl` ago, or None."""
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if time.monotonic() - entry[0] >= self.ttl:
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        """Remember that a key digest belongs to an active principal."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[digest] = (time.monotonic(), principal)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every key (after a principal changed)."""
        with self._lock:
            self._entries.clear()
