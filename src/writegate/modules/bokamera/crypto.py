"""Encryption at rest for Vaka passwords: Fernet (AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

#: environment variable holding the secret the key is derived from (any string, 32+ chars)
KEY_ENV = "WRITEGATE_BOKAMERA_SECRET_KEY"
#: used only when KEY_ENV is unset; protects against casual reading, not against an attacker
DEV_SECRET = "writegate-bokamera-development-key-set-WRITEGATE_BOKAMERA_SECRET_KEY"  # noqa: S105


class SecretError(Exception):
    """A stored secret could not be decrypted (wrong key or tampered)."""


def _fernet() -> Fernet:
    # Imported on first use: cryptography's bindings add about 6 MB to every process that
    # loads this module, and most (workers of other kinds, a quiet serve) never need them.
    from cryptography.fernet import Fernet

    secret = (os.environ.get(KEY_ENV) or DEV_SECRET).encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret).digest()))


def encrypt(plaintext: str) -> str:
    """Encrypt and authenticate; a fresh random IV every time."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Reverse encrypt(); raise SecretError if the key is wrong or the value was altered."""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise SecretError(
            "stored secret does not match the configured key or was altered"
        ) from None
