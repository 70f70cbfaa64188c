"""The request id: the client's X-Request-ID when it is a sane token, else a new one."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

HEADER = b"x-request-id"
#: what is taken from a client: a short token of safe characters (no spaces, no control
#: characters: it goes into every log line and back into the response)
_USABLE = re.compile(rb"[A-Za-z0-9._:+=@/-]{1,128}")


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's id: its X-Request-ID header if usable, else 32 new random hex digits."""
    for name, value in headers:
        if name == HEADER:
            if _USABLE.fullmatch(value):
                return value.decode("ascii")
            break
    return os.urandom(16).hex()
