"""The BokaMera keyring: the stored format of a Vaka password, rotation order, tampering."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from nacl.secret import SecretBox

from writegate.modules.bokamera.crypto import PREFIX, Keyring, SecretError, new_key

OLD, NEW = new_key(), new_key()


@given(st.text(max_size=200))
def test_a_password_round_trips_under_a_fresh_nonce(password: str) -> None:
    ring = Keyring([NEW], "test")
    one, two = ring.encrypt(password), ring.encrypt(password)
    assert one.startswith(PREFIX)
    assert one != two
    assert ring.decrypt(one) == ring.decrypt(two) == password


def test_the_stored_format_is_secretbox_under_the_documented_key() -> None:
    """docs/bokamera.md's format: a change here makes every stored password unreadable."""
    token = Keyring([NEW], "test").encrypt("vaka")
    raw = base64.urlsafe_b64decode(NEW)
    key = hashlib.blake2b(digest_size=32, key=raw, person=b"wg-vaka-password").digest()
    sealed = base64.urlsafe_b64decode(token.removeprefix(PREFIX))
    assert SecretBox(key).decrypt(sealed) == b"vaka"


def test_every_key_decrypts_and_the_first_encrypts() -> None:
    old_token = Keyring([OLD], "test").encrypt("vaka")
    ring = Keyring([NEW, OLD], "test")
    assert ring.decrypt(old_token) == "vaka"
    rotated = ring.rotate(old_token)
    assert Keyring([NEW], "test").decrypt(rotated) == "vaka"
    with pytest.raises(SecretError, match="none of the keys from test"):
        Keyring([OLD], "test").decrypt(rotated)


@pytest.mark.parametrize(
    "alter",
    [
        lambda t: t[:-4] + ("AAAA" if t[-4:] != "AAAA" else "BBBB"),  # the ciphertext
        lambda t: (
            t[: len(PREFIX) + 8]
            + ("A" if t[len(PREFIX) + 8] != "A" else "B")
            + t[len(PREFIX) + 9 :]
        ),  # the nonce
        lambda t: t[:30],  # truncated
        lambda t: PREFIX + "not base64!",
        lambda t: PREFIX,
    ],
    ids=["ciphertext", "nonce", "truncated", "not-base64", "empty"],
)
def test_an_altered_password_is_refused(alter: object) -> None:
    ring = Keyring([NEW], "test")
    token = alter(ring.encrypt("vaka"))  # type: ignore[operator]
    with pytest.raises(SecretError, match="or it was altered"):
        ring.decrypt(token)
    with pytest.raises(SecretError, match="none of the keys"):
        ring.rotate(token)


def test_a_fernet_token_of_an_earlier_version_is_read_and_rotated() -> None:
    legacy = Fernet(OLD.encode()).encrypt(b"vaka").decode()
    ring = Keyring([NEW, OLD], "test")
    assert ring.decrypt(legacy) == "vaka"
    assert ring.rotate(legacy).startswith(PREFIX)
    with pytest.raises(SecretError):
        Keyring([NEW], "test").decrypt(legacy)


def test_current_passwords_never_load_cryptography() -> None:
    """cryptography's bindings cost a process about 7 MB; only a Fernet token needs them."""
    code = (
        "import sys\n"
        "from writegate.modules.bokamera.crypto import Keyring, new_key\n"
        "ring = Keyring([new_key(), new_key()], 'test')\n"
        "assert ring.decrypt(ring.rotate(ring.encrypt('vaka'))) == 'vaka'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
