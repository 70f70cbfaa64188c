"""Key rotation over the real database: add a key, rotate-key, drop the old key."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import update

from tests.api.bokamera.conftest import Company, make_company, start_sync, wait_done
from tests.harness import Server, fresh_database, spawn, start_server
from writegate.modules.bokamera import crypto
from writegate.modules.bokamera.models import AxemaSettingsRow


@contextmanager
def serving(url: str, keys: str) -> Iterator[Server]:
    """A server on url whose BokaMera keys are `keys` (comma-separated, first encrypts)."""
    srv = start_server(url, bokamera_secret_key=keys)
    try:
        yield srv
    finally:
        srv.stop()
        srv.services.close()


def _stored(srv: Server, company: Company) -> str:
    with srv.services.db.read() as s:
        row = s.get(AxemaSettingsRow, company.id)
        assert row is not None
        return row.password_encrypted


def _opens(key: str, token: str) -> bool:
    """Whether the stored token is a current-format password that `key` alone reads."""
    if not token.startswith(crypto.PREFIX):
        return False
    try:
        return crypto.Keyring([key], "test").decrypt(token) == "vaka"
    except crypto.SecretError:
        return False


def _sync(srv: Server, company: Company) -> dict[str, Any]:
    with srv.client() as c:
        return wait_done(c, company, start_sync(c, company)["Id"])


def _rotate(srv: Server, keys: str, log: Path) -> tuple[int, str]:
    env = {**srv.env, "WRITEGATE_BOKAMERA_SECRET_KEY": keys}
    proc = spawn(["bokamera", "rotate-key"], env, log=str(log))
    try:
        code = proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return code, log.read_text()


def test_add_a_key_rotate_then_drop_the_old_one(tmp_path: Path, vaka: Any) -> None:
    """Old ciphertext stays readable once a new key is added in front; rotate-key re-encrypts
    every stored password under it; then the old key can go, and only then."""
    sim = vaka(3)
    old, new = crypto.new_key(), crypto.new_key()
    with fresh_database(str(tmp_path)) as url:
        with serving(url, old) as srv, srv.client() as c:

            def make_principal(**kw: Any) -> Any:
                with srv.services.db.write() as s:
                    return srv.services.auth.create(s, name=f"u-{uuid.uuid4().hex}", **kw)

            company = make_company(c, make_principal, sim)
            before = _stored(srv, company)
            assert _opens(old, before)

        with serving(url, f"{new},{old}") as srv:
            assert _stored(srv, company) == before
            done = _sync(srv, company)
            assert (done["Status"], done["UsersCreated"]) == (2, 3), done
            code, out = _rotate(srv, f"{new},{old}", tmp_path / "rotate.log")
            assert code == 0, out
            assert "re-encrypted 1 stored password" in out, out
            after = _stored(srv, company)
            assert after != before
            assert _opens(new, after)
            assert not _opens(old, after)
            # running it again is harmless
            code, out = _rotate(srv, f"{new},{old}", tmp_path / "again.log")
            assert (code, "re-encrypted 1" in out) == (0, True), out
            after = _stored(srv, company)
            assert _opens(new, after)

        with serving(url, new) as srv:
            done = _sync(srv, company)
            assert (done["Status"], done["UsersFound"]) == (2, 3), done

        with serving(url, old) as srv:
            done = _sync(srv, company)
            assert done["Status"] == 3, done
            assert "none of the keys" in done["ErrorMessage"], done
            code, out = _rotate(srv, old, tmp_path / "wrong.log")
            assert code == 1, out
            assert f"company {company.id}: cannot read its password" in out, out
            assert _stored(srv, company) == after


def test_a_password_stored_as_a_fernet_token_is_read_and_rotated(tmp_path: Path, vaka: Any) -> None:
    """A password stored by a version before PyNaCl (a Fernet token under the same key) still
    syncs, and rotate-key stores it again in the current format."""
    sim = vaka(2)
    key = crypto.new_key()
    with fresh_database(str(tmp_path)) as url, serving(url, key) as srv:
        with srv.client() as c:

            def make_principal(**kw: Any) -> Any:
                with srv.services.db.write() as s:
                    return srv.services.auth.create(s, name=f"u-{uuid.uuid4().hex}", **kw)

            company = make_company(c, make_principal, sim)
        legacy = Fernet(key.encode()).encrypt(b"vaka").decode()
        with srv.services.db.write() as s:
            s.execute(
                update(AxemaSettingsRow)
                .where(AxemaSettingsRow.company_id == company.id)
                .values(password_encrypted=legacy)
            )
        done = _sync(srv, company)
        assert (done["Status"], done["UsersCreated"]) == (2, 2), done
        code, out = _rotate(srv, key, tmp_path / "rotate.log")
        assert code == 0, out
        assert "re-encrypted 1 stored password" in out, out
        after = _stored(srv, company)
        assert after != legacy
        assert _opens(key, after)
        done = _sync(srv, company)
        assert (done["Status"], done["UsersFound"]) == (2, 2), done


def test_rotate_key_with_an_unusable_key_is_one_line(tmp_path: Path) -> None:
    """A key that is not one is refused in writegate's one-line form, exit 2 (it printed
    `error: ...`, unlike every other command)."""
    with fresh_database(str(tmp_path)) as url, serving(url, crypto.new_key()) as srv:
        code, text = _rotate(srv, "not-a-key", tmp_path / "rotate.log")
    assert code == 2, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("writegate: "), text
    assert "WRITEGATE_BOKAMERA_SECRET_KEY" in lines[0], text
