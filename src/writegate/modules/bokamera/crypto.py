"""Vaka passwords at rest: SecretBox (XSalsa20-Poly1305), keys from the env or a key file."""

# Several keys make a keyring: the first encrypts and every one decrypts, so a key can be
# rotated without downtime (docs/bokamera.md). Passwords stored by earlier versions are Fernet
# tokens under the same keys: still read, and re-encrypted by `writegate bokamera rotate-key`.

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import logging
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from writegate.core.exceptions import ConfigError

if TYPE_CHECKING:
    from nacl.secret import SecretBox

    from writegate.core.services import Services
    from writegate.settings import Settings

#: environment variable of the keys: secret keys separated by commas, the newest first
KEY_ENV = "WRITEGATE_BOKAMERA_SECRET_KEY"
#: environment variable of the key file used when KEY_ENV is unset
KEY_FILE_ENV = "WRITEGATE_BOKAMERA_KEY_FILE"
#: the default key file is the SQLite database's path with this suffix
KEY_FILE_SUFFIX = ".bokamera.key"
#: what a stored password starts with: then url-safe base64 of SecretBox's nonce + ciphertext
PREFIX = "v2:"
#: BLAKE2b personalization of the SecretBox key derived from a configured key
_PERSON = b"wg-vaka-password"


class SecretError(Exception):
    """A secret cannot be encrypted or decrypted: no key, wrong key, or an altered value."""


class KeyConfigError(ConfigError):
    """The configured keys are unusable; the process must not start with them."""


def _box_key(key: str) -> bytes:
    """The SecretBox key of a configured key: its 32 bytes through keyed BLAKE2b.

    A key of its own for this use, so the bytes that also read old Fernet tokens (as an
    HMAC and an AES key) never serve two ciphers.
    """
    raw = base64.urlsafe_b64decode(key.encode())
    return hashlib.blake2b(digest_size=32, key=raw, person=_PERSON).digest()


class Keyring:
    """The process's secret keys (first encrypts, all decrypt), or where to make one."""

    def __init__(self, keys: list[str], source: str, *, path: Path | None = None) -> None:
        self._keys = tuple(keys)
        #: where the keys came from, for log lines and errors (never the keys themselves)
        self.source = source
        #: a key file that does not exist yet: generated when a key is first needed
        self.pending = path

    @property
    def usable(self) -> bool:
        """Whether there is a key, or a key file to generate."""
        return bool(self._keys) or self.pending is not None

    @functools.cached_property
    def _loaded(self) -> tuple[str, ...]:
        keys = self._keys
        if not keys and self.pending is not None:
            try:
                keys = tuple(_ensure_key_file(self.pending))
            except KeyConfigError as exc:
                raise SecretError(str(exc)) from None
        if not keys:
            raise SecretError(
                f"no key to encrypt Axema Vaka passwords with: set {KEY_ENV} "
                f"(or {KEY_FILE_ENV}), see docs/bokamera.md"
            )
        return keys

    @functools.cached_property
    def _boxes(self) -> list[SecretBox]:
        # Imported on first use: most processes (workers of other kinds, a quiet serve) never
        # need it.
        from nacl.secret import SecretBox

        return [SecretBox(_box_key(k)) for k in self._loaded]

    def encrypt(self, plaintext: str) -> str:
        """Encrypt and authenticate under the first key; a fresh random nonce every time."""
        sealed = self._boxes[0].encrypt(plaintext.encode())
        return PREFIX + base64.urlsafe_b64encode(bytes(sealed)).decode()

    def decrypt(self, token: str) -> str:
        """Reverse encrypt() with whichever key fits; SecretError if none does."""
        plaintext = self._open(token)
        if plaintext is None:
            raise SecretError(
                f"the stored secret matches none of the keys from {self.source}, or it was altered"
            )
        return plaintext

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the first key; SecretError if no key reads it."""
        plaintext = self._open(token)
        if plaintext is None:
            raise SecretError(f"it matches none of the keys from {self.source}")
        return self.encrypt(plaintext)

    def _open(self, token: str) -> str | None:
        if not token.startswith(PREFIX):
            return self._open_fernet(token)
        from nacl.exceptions import CryptoError

        try:
            sealed = base64.urlsafe_b64decode(token[len(PREFIX) :].encode())
        except (binascii.Error, ValueError):
            return None
        for box in self._boxes:
            try:
                return box.decrypt(sealed).decode()
            except (CryptoError, ValueError):  # a wrong key, an altered or truncated value
                continue
        return None

    def _open_fernet(self, token: str) -> str | None:
        """A password stored by a version before PyNaCl: a Fernet token under the same keys."""
        from cryptography.fernet import Fernet, InvalidToken, MultiFernet

        fernet = MultiFernet([Fernet(k.encode()) for k in self._loaded])
        try:
            return fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            return None


def new_key() -> str:
    """A fresh random secret key: 32 random bytes, url-safe base64 (Fernet's key format)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_keys(text: str, source: str) -> list[str]:
    """Secret keys separated by commas, blanks or new lines, the first one encrypting."""
    if not text.strip():
        raise KeyConfigError(f"{source} holds no key")
    keys = re.split(r"[\s,]+", text.strip())
    for n, key in enumerate(keys, 1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise KeyConfigError(
                f"{source}: key {n} is not a secret key (32 url-safe base64-encoded bytes, "
                "44 characters); make one with `writegate bokamera generate-key`"
            )
    return keys


def default_key_file(database_url: str) -> Path | None:
    """The embedded default's key file: beside a SQLite database file; None otherwise."""
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None  # a SQLite URI, perhaps in memory: no data directory to speak of
    return Path(database + KEY_FILE_SUFFIX)


def _create_key_file(path: Path) -> bool:
    """Write a new key to path with mode 0600 unless it exists; True if this call made it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bokamera-key-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new_key() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            # link() never replaces: of processes starting at once, exactly one key wins.
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _read_key_file(path: Path) -> list[str]:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyConfigError(
                f"key file {path} is open to other users (mode {stat.S_IMODE(mode):04o}): "
                f"run `chmod 600 {path}`"
            )
        text = path.read_text()
    except OSError as exc:
        raise KeyConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    return parse_keys(text, f"key file {path}")


def load_keyring(settings: Settings) -> Keyring:
    """The keys the settings name (env, else key file, else none); KeyConfigError if unusable."""
    configured = settings.bokamera_secret_key
    if configured is not None and configured.get_secret_value().strip():
        return Keyring(parse_keys(configured.get_secret_value(), KEY_ENV), KEY_ENV)
    path = (
        Path(settings.bokamera_key_file)
        if settings.bokamera_key_file
        else default_key_file(settings.database_url)
    )
    if path is None:
        return Keyring([], f"{KEY_ENV} (unset)")
    if not path.exists():
        # Made by the first process that needs a key, not by every CLI command that starts.
        return Keyring([], f"key file {path}", path=path)
    return Keyring(_read_key_file(path), f"key file {path}")


def _ensure_key_file(path: Path) -> list[str]:
    try:
        generated = _create_key_file(path)
    except OSError as exc:
        raise KeyConfigError(f"cannot create key file {path}: {exc.strerror}") from None
    if generated:
        logging.getLogger("writegate.bokamera").warning(
            "generated a new secret key for Axema Vaka passwords in %s (mode 0600): keep and "
            "back it up with the database, stored passwords cannot be read without it",
            path,
        )
    return _read_key_file(path)


def keyring_of(services: Services) -> Keyring:
    """The keyring the module loaded at start-up."""
    keyring: Keyring = services.extras["bokamera"]["keyring"]
    return keyring
