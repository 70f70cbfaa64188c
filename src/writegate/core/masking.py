"""Hide secrets in job payloads, results and checkpoints before an operator sees them."""

from __future__ import annotations

from typing import Any

MASK = "***"
#: a key containing any of these names a secret
_SECRET_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "authorization",
    "credential",
    "private",
    "cookie",
)
#: whole keys that name a secret
_SECRET_KEYS = frozenset({"pin", "pwd", "pass", "key", "otp", "cvc", "cvv"})


def is_secret(key: str) -> bool:
    """True if a field of this name holds a secret."""
    k = key.lower().replace("-", "_")
    return k in _SECRET_KEYS or any(part in k for part in _SECRET_PARTS)


def masked(value: Any) -> Any:
    """A copy of value with every secret field's value replaced by ***."""
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret(k) and v is not None else masked(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value
