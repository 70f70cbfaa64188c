"""Encryption at rest for Vaka passwords (stdlib only: HMAC-SHA256 CTR keystream + HMAC tag)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

#: environment variable holding the secret the key is derived from (any string, 32+ chars)
KEY_ENV = "WRITEGATE_BOKAMERA_SECRET_KEY"
#: used only when KEY_ENV is unset; protects against casual reading, not against an attacker
DEV_SECRET = "writegate-bokamera-development-key-set-WRITEGATE_BOKAMERA_SECRET_KEY"  # noqa: S105
VERSION = b"v1"


class SecretError(Exception):
    """A stored secret could not be decrypted (wrong key or tampered)."""


def _keys() -> tuple[bytes, bytes]:
    master = hashlib.sha256((os.environ.get(KEY_ENV) or DEV_SECRET).encode()).digest()
    enc = hmac.new(master, b"bokamera-encrypt", hashlib.sha256).digest()
    mac = hmac.new(master, b"bokamera-authenticate", hashlib.sha256).digest()
    return enc, mac


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hmac.new(key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        counter += 1
    return bytes(out[:length])


def encrypt(plaintext: str) -> str:
    """Encrypt-then-MAC; a fresh random nonce every time."""
    enc, mac = _keys()
    nonce = os.urandom(16)
    data = plaintext.encode()
    body = bytes(a ^ b for a, b in zip(data, _keystream(enc, nonce, len(data)), strict=True))
    tag = hmac.new(mac, VERSION + nonce + body, hashlib.sha256).digest()
    return (VERSION + b"." + base64.urlsafe_b64encode(nonce + body + tag)).decode()


def decrypt(token: str) -> str:
    """Reverse encrypt(); raise SecretError if the key is wrong or the value was altered."""
    enc, mac = _keys()
    version, _, b64 = token.encode().partition(b".")
    try:
        raw = base64.urlsafe_b64decode(b64)
    except ValueError:
        raise SecretError("stored secret is not valid base64") from None
    if version != VERSION or len(raw) < 48:
        raise SecretError("stored secret has an unknown format")
    nonce, body, tag = raw[:16], raw[16:-32], raw[-32:]
    expected = hmac.new(mac, VERSION + nonce + body, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise SecretError("stored secret does not match the configured key")
    return bytes(
        a ^ b for a, b in zip(body, _keystream(enc, nonce, len(body)), strict=True)
    ).decode()
