"""Tokens and keys: enough entropy, compared as hashes in constant time, expiry server-side."""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.harness import Server, uid
from tests.system.apis import present_modules
from writegate.core import auth as core_auth
from writegate.core import tokens as core_tokens
from writegate.core.tokens import ProcessTokenRow

IKO_LOGIN = "/bcss_wbcl_wa_sc/api/O1_getSCSessWBLogVer"
IKO_TOKEN = "/bcss_wbcl_wa_sc/api/O1_getSCPrgPrcCheckTkn"
IKO_SAVE = "/bcss_wbcl_wa_ss/api/ss_02_ss07_sav"
PASSWORD = "Tokens-pw-0123456789"


def bits_per_char(values: list[str]) -> float:
    """Shannon entropy of the characters of values, in bits per character."""
    counts = Counter("".join(values))
    total = sum(counts.values())
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def test_api_keys_have_256_bits_and_only_their_hash_is_stored(server: Server) -> None:
    """300 keys: unique, 43 url-safe random characters after the prefix, stored as SHA-256."""
    services = server.services
    keys = []
    with services.db.write() as s:
        for _ in range(300):
            _, key = services.auth.create(s, name=uid("ent-"), tenant=uid("t"), roles=[])
            keys.append(key)
    assert len(set(keys)) == len(keys)
    bodies = [k.removeprefix("wg_") for k in keys]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", b) for b in bodies)
    assert bits_per_char(bodies) > 5.9  # url-safe base64 carries at most 6 bits a character
    with services.db.read() as s:
        for key in keys[:20]:
            principal = services.auth.by_api_key(s, key)
            assert principal is not None
            stored = s.scalar(
                select(core_auth.PrincipalRow.api_key_hash).where(
                    core_auth.PrincipalRow.id == principal.id
                )
            )
            assert stored == hashlib.sha256(key.encode()).hexdigest()
            # one character off is a different hash: no partial matches, no prefix probing
            assert services.auth.by_api_key(s, key[:-1] + ("A" if key[-1] != "A" else "B")) is None


def test_secret_comparisons_are_constant_time_over_hashes() -> None:
    """Keys and tokens are looked up by SHA-256 digest and confirmed with compare_digest.

    An attacker controls the input, not its digest, so timing of the index lookup tells
    nothing about the stored secret; the final comparison is hmac.compare_digest.
    """
    for fn in (
        core_auth.AuthService.by_api_key,
        core_auth.AuthService.by_api_key_read,
        core_tokens.TokenService.consume_digests,
    ):
        source = inspect.getsource(fn)
        assert "compare_digest" in source, fn.__qualname__
        assert re.search(r"==\s*(key|value)\b", source) is None, fn.__qualname__


def test_process_tokens_have_256_bits_are_single_use_and_expire(server: Server) -> None:
    """Core process tokens: unique random values, hash-only storage, server-side expiry."""
    services = server.services
    tenant = uid("tok")
    with services.db.write() as s:
        issued = [
            services.tokens.issue(s, tenant=tenant, subject="u", scope="p", purpose="NEW")
            for _ in range(200)
        ]
    values = [t.value for t in issued]
    assert len(set(values)) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", v) for v in values)
    assert bits_per_char(values) > 5.9
    with services.db.read() as s:
        stored = set(s.scalars(select(ProcessTokenRow.token_hash)))
    assert not stored & set(values)
    assert hashlib.sha256(values[0].encode()).hexdigest() in stored


def _iko_user(server: Server) -> str:
    email = f"{uid('tok')}@example.com"
    with server.services.db.write() as s:
        server.services.auth.create(
            s,
            name=email,
            tenant=uid("3"),
            roles=["ikonomikal", "ikonomikal:ss07"],
            password=PASSWORD,
            attrs={"user_code": "U1", "group": "G1"},
        )
    return email


def _login(c: httpx.Client, email: str) -> dict[str, Any]:
    login: dict[str, Any] = c.post(IKO_LOGIN, json={"userID": email, "userPW": PASSWORD}).json()
    assert login["rspPrc"]["rspID"] == 0, login
    return {k: login[k] for k in ("subsID", "intGID", "userID", "sessID")}


def _token(c: httpx.Client, session: dict[str, Any], proc_id: int = 1) -> int:
    body = {"pgProcTkn": {"procID": proc_id, "prgInf": {"pPRGM": "SS07"}}, **session}
    return int(c.post(IKO_TOKEN, json=body).json()["rspPrc"]["rspID"])


def _save(c: httpx.Client, session: dict[str, Any]) -> int:
    body = {
        "prgInf": {"pPRGM": "SS07"},
        "saveData": {"f001": "", "f002": "expiry test"},
        "cmdStat": 0,
        **session,
    }
    return int(c.post(IKO_SAVE, json=body).json()["rspPrc"]["rspID"])


@pytest.mark.skipif("ikonomikal" not in present_modules(), reason="ikonomikal not in this tree")
def test_ikonomikal_sessions_are_random_and_expiry_is_enforced_by_the_server(
    server: Server, client: httpx.Client, clock: Any
) -> None:
    """Session ids are unique and random; a token expires after 60 minutes and a session
    after 8 idle hours, whatever the client believes."""
    email = _iko_user(server)
    sessions = [_login(client, email)["sessID"] for _ in range(12)]
    assert len(set(sessions)) == 12
    assert all(len(re.sub(r"[^0-9A-Fa-f]", "", s)) >= 32 for s in sessions)

    session = _login(client, email)
    assert _token(client, session) == 0
    clock.advance(timedelta(minutes=61))
    assert _save(client, session) == 1000105  # NEW token ... does not exist or has expired
    assert _token(client, session) == 0
    assert _save(client, session) == 0  # a fresh token works: only the old one expired
    assert _save(client, session) == 1000105  # and it was used once

    clock.advance(timedelta(hours=8, minutes=1))
    assert _token(client, session) == 1000144  # User session does not exist
