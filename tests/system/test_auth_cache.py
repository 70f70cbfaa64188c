"""The API-key cache: a revocation is seen at once in its process, within its TTL elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Server, fresh_database, start_server, uid
from tests.system.apis import abs_client_code

#: ABS's answer to a key that is unknown or revoked
REFUSED = "INVALID_API_KEY"
#: the cache time to live of the cross-process test: small, so the test stays short
SHORT_TTL = 1.0
CLI = "from writegate.cli import main; main()"


@pytest.fixture
def make_server(tmp_path: Any) -> Iterator[Any]:
    """Start ABS servers with a given auth cache time to live on one fresh database."""
    started: list[Server] = []
    with fresh_database(str(tmp_path)) as url:

        def make(ttl: float) -> Server:
            srv = start_server(url, embedded_worker=False, modules=["abs"], auth_cache_seconds=ttl)
            started.append(srv)
            return srv

        yield make
        for srv in started:
            srv.stop()


def _principal(srv: Server) -> tuple[str, str, str]:
    """(name, API key, client code) of a new ABS caller."""
    code = abs_client_code(srv)
    name = uid("cache-")
    with srv.services.db.write() as s:
        _, key = srv.services.auth.create(s, name=name, tenant=code, roles=["abs:write"])
    return name, str(key), code


def _answer(c: httpx.Client, key: str, code: str) -> str:
    """ABS getList with the key: "ok", or the refusal's error code."""
    r = c.post("/model/package/getList", json={"client_code": code}, headers={"x-api-key": key})
    body = r.json()
    return "ok" if body["status"] == "ok" else str(body["error"])


def test_a_revocation_in_this_process_takes_effect_at_once(make_server: Any) -> None:
    """However long the cache's time to live, the revoking commit empties it."""
    srv = make_server(3600.0)
    name, key, code = _principal(srv)
    with srv.client() as c:
        assert _answer(c, key, code) == "ok"  # now cached for an hour
        assert _answer(c, key, code) == "ok"
        with srv.services.db.write() as s:
            assert srv.services.auth.revoke(s, name)
        assert _answer(c, key, code) == REFUSED


def test_a_revocation_that_is_rolled_back_changes_nothing(make_server: Any) -> None:
    srv = make_server(3600.0)
    name, key, code = _principal(srv)
    with srv.client() as c:
        assert _answer(c, key, code) == "ok"

        def revoke_then_fail() -> None:
            with srv.services.db.write() as s:
                assert srv.services.auth.revoke(s, name)
                raise RuntimeError("changed my mind")

        with pytest.raises(RuntimeError, match="changed my mind"):
            revoke_then_fail()
        assert _answer(c, key, code) == "ok"


def test_a_revocation_by_the_cli_takes_effect_within_the_cache_time(make_server: Any) -> None:
    """`writegate principals revoke` in another process: refused within auth_cache_seconds."""
    srv = make_server(SHORT_TTL)
    name, key, code = _principal(srv)
    env = {
        **os.environ,
        "WRITEGATE_DATABASE_URL": srv.settings.database_url,
        "WRITEGATE_MODULES": json.dumps(srv.settings.modules),
    }
    with srv.client() as c:
        assert _answer(c, key, code) == "ok"
        out = subprocess.run(
            [sys.executable, "-c", CLI, "principals", "revoke", name],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        revoked = time.monotonic()
        while _answer(c, key, code) == "ok":
            assert time.monotonic() - revoked < SHORT_TTL + 2, "revoked key still accepted"
            time.sleep(0.05)
        assert _answer(c, key, code) == REFUSED


def test_a_revocation_elsewhere_is_not_seen_before_the_cache_time(make_server: Any) -> None:
    """Another process's revocation reaches this one only through the cache's expiry."""
    srv = make_server(3600.0)
    other = make_server(3600.0)  # another process's services, on the same database
    name, key, code = _principal(srv)
    with srv.client() as c:
        assert _answer(c, key, code) == "ok"
        with other.services.db.write() as s:
            assert other.services.auth.revoke(s, name)
        assert _answer(c, key, code) == "ok"  # cached here for an hour
    with other.client() as c:
        assert _answer(c, key, code) == REFUSED
