"""Secrets: only hashes at rest, the Vaka password never returned, no secret in any log."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select, text

from tests.harness import fresh_database
from tests.system.apis import present_modules
from tests.system.faults import serve_env, serve_process
from writegate.core.db import Base
from writegate.core.services import Services
from writegate.settings import Settings

IKO_LOGIN = "/bcss_wbcl_wa_sc/api/O1_getSCSessWBLogVer"
IKO_TOKEN = "/bcss_wbcl_wa_sc/api/O1_getSCPrgPrcCheckTkn"
IKO_SAVE = "/bcss_wbcl_wa_ss/api/ss_02_ss07_sav"


@dataclass
class Secrets:
    """Every secret a run handed out or received, to look for afterwards."""

    values: list[str] = field(default_factory=list)

    def add(self, value: str) -> str:
        """Remember a secret; return it."""
        assert len(value) >= 8, "too short to search for reliably"
        self.values.append(value)
        return value


def exercise(url: str, services: Services, secrets: Secrets) -> None:
    """Drive every module with real and wrong secrets: keys, passwords, sessions."""
    modules = present_modules()
    auth = services.auth
    with httpx.Client(base_url=url, timeout=30) as c:
        # wrong keys and passwords are secrets too: a typo'd real one must not be logged
        wrong = secrets.add("wg_" + uuid.uuid4().hex + "WRONGKEY")
        if "abs" in modules:
            from writegate.modules.abs import service as abs_service

            code = f"EN{uuid.uuid4().hex[:8].upper()}"
            assert abs_service.register_client(services, code, name="secrets")
            with services.db.write() as s:
                _, key = auth.create(s, name=uuid.uuid4().hex, tenant=code, roles=[])
            secrets.add(key)
            for k in (key, wrong):
                c.post("/model/package/putDb", json={"client_code": code}, headers={"x-api-key": k})
                c.post(
                    "/model/package/get",
                    json={"client_code": code, "id": 1},
                    headers={"authorization": f"Bearer {k}"},
                )
        if "bokamera" in modules:
            company = str(uuid.uuid4())
            with services.db.write() as s:
                _, key = auth.create(
                    s,
                    name=uuid.uuid4().hex,
                    tenant=company,
                    roles=["bookingsupplier-administrator-write"],
                )
            secrets.add(key)
            vaka_pw = secrets.add("vaka-" + uuid.uuid4().hex)
            settings = {"ApiEndpoint": "http://127.0.0.1:9", "Username": "u", "Password": vaka_pw}
            r = c.post("/codelock/axema/settings", json=settings, headers={"x-api-key": key})
            assert r.status_code == 200, r.text
            assert vaka_pw not in r.text
            r = c.get("/codelock/axema/settings", headers={"x-api-key": key})
            assert r.status_code == 200
            assert vaka_pw not in r.text
            assert r.json()["PasswordIsSet"] is True
            r = c.put(
                "/codelock/axema/settings",
                json={"Password": secrets.add("vaka2-" + uuid.uuid4().hex)},
                headers={"x-api-key": key},
            )
            assert r.status_code == 200
            assert "vaka2-" not in r.text
            # a sync against an unreachable Vaka: the connector's errors must not carry it
            c.post("/codelock/axema/usersync", json={}, headers={"x-api-key": key})
            c.post("/codelock/axema/usersync", json={}, headers={"x-api-key": wrong})
        if "ikonomikal" in modules:
            email = f"{uuid.uuid4().hex[:10]}@example.com"
            password = secrets.add("pw-" + uuid.uuid4().hex)
            with services.db.write() as s:
                auth.create(
                    s,
                    name=email,
                    tenant="2" + uuid.uuid4().hex[:6],
                    roles=["ikonomikal", "ikonomikal:ss07"],
                    password=password,
                    attrs={"user_code": "U1", "group": "G1"},
                )
            bad = c.post(
                IKO_LOGIN, json={"userID": email, "userPW": secrets.add(password + "x")}
            ).json()
            assert bad["rspPrc"]["rspID"] != 0
            assert password not in str(bad)
            login = c.post(IKO_LOGIN, json={"userID": email, "userPW": password}).json()
            assert login["rspPrc"]["rspID"] == 0, login
            secrets.add(login["sessID"])
            session = {k: login[k] for k in ("subsID", "intGID", "userID", "sessID")}
            c.post(
                IKO_TOKEN,
                json={"pgProcTkn": {"procID": 1, "prgInf": {"pPRGM": "SS07"}}, **session},
            )
            c.post(
                IKO_SAVE,
                json={
                    "prgInf": {"pPRGM": "SS07"},
                    "saveData": {"f001": "", "f002": "x"},
                    "cmdStat": 0,
                    **session,
                },
            )
            c.post(IKO_TOKEN, json={**session, "sessID": secrets.add(str(uuid.uuid4()))})
            # a token left outstanding: what the module keeps of it is checked at rest
            left = c.post(
                IKO_TOKEN,
                json={"pgProcTkn": {"procID": 3, "prgInf": {"pPRGM": "SS07"}}, **session},
            ).json()
            assert left["rspID"] == 0, left
        with services.db.write() as s:
            _, key = auth.create(s, name=uuid.uuid4().hex, tenant="t", roles=[])
        secrets.add(key)


def dump(services: Services) -> str:
    """Every row of every table, as one text."""
    parts = []
    with services.db.read() as s:
        for table in Base.metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in s.execute(select(table)))
    return "\n".join(parts)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Any, Services, str]]:
    """A `serve` process logging at debug level, plus Services on its database."""
    with fresh_database(str(tmp_path)) as url:
        env = serve_env(url, present_modules(), log_level="debug")
        log = str(tmp_path / "serve.log")
        with serve_process(env, log) as srv:
            services = Services.build(Settings(database_url=url, modules=present_modules()))
            try:
                yield srv, services, log
            finally:
                services.close()


def test_no_secret_at_rest_or_in_logs(live: tuple[Any, Services, str]) -> None:
    """After a run full of secrets: the database holds hashes only, the log holds none."""
    srv, services, log = live
    secrets = Secrets()
    exercise(srv.url, services, secrets)
    srv.stop()  # flush and close the log

    at_rest = dump(services)
    in_log = Path(log).read_text(errors="replace")
    assert "writegate" in in_log or "Uvicorn" in in_log, "the log should not be empty"
    for secret in secrets.values:
        assert secret not in at_rest, f"secret stored in clear: {secret[:6]}..."
        assert secret.upper() not in at_rest.upper(), f"secret stored in clear: {secret[:6]}..."
        assert secret not in in_log, f"secret in the log: {secret[:6]}..."

    from writegate.core.auth import PrincipalRow

    with services.db.read() as s:
        rows = list(s.scalars(select(PrincipalRow)))
    assert rows
    for row in rows:
        assert row.api_key_hash is not None
        assert len(row.api_key_hash) == 64
        assert row.api_key_hint is not None
        assert len(row.api_key_hint) <= 7
        if row.password_hash is not None:
            assert row.password_hash.startswith("$argon2id$"), row.password_hash[:10]
    keys = [v for v in secrets.values if v.startswith("wg_") and "WRONGKEY" not in v]
    hashes = {r.api_key_hash for r in rows}
    assert all(hashlib.sha256(k.encode()).hexdigest() in hashes for k in keys)
    if "ikonomikal" in present_modules():
        _ikonomikal_tokens_are_digests(services)


def _ikonomikal_tokens_are_digests(services: Services) -> None:
    """Outstanding Ikonomikal process tokens are kept as the digest the core stores, only."""
    from writegate.core.tokens import ProcessTokenRow

    with services.db.read() as s:
        table = "ikonomikal_proc_tokens"
        columns = {c["name"] for c in inspect(s.connection()).get_columns(table)}
        live = list(s.execute(text(f"SELECT * FROM {table}")).mappings())
        digests = set(s.scalars(select(ProcessTokenRow.token_hash)))
    assert "token" not in columns, "process tokens kept in clear"
    assert live, "the run should leave a process token outstanding"
    assert all(row["token_hash"] in digests for row in live)
