"""Fixtures for the BokaMera tests: live Vaka simulators and companies configured against them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.harness import wait_for
from writegate.modules.bokamera.simulator import RunningSimulator, build_state

WRITE = "bookingsupplier-administrator-write"
READ = "bookingsupplier-administrator-read"
SYNC = "/codelock/axema/usersync"
SETTINGS = "/codelock/axema/settings"


@dataclass
class Company:
    """A company (a GUID tenant) with an administrator's API key."""

    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        """Authentication headers of its administrator."""
        return {"x-api-key": self.key}


@pytest.fixture
def vaka() -> Iterator[Callable[..., RunningSimulator]]:
    """Start Axema Vaka simulators (real HTTP servers in threads), stopped after the test."""
    started: list[RunningSimulator] = []

    def start(users: int = 0, **kw: Any) -> RunningSimulator:
        sim = RunningSimulator(build_state(users, **kw))
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def make_company(
    client: httpx.Client,
    make_principal: Any,
    sim: RunningSimulator | None,
    *,
    roles: list[str] | None = None,
    password: str = "vaka",  # noqa: S107 - the simulator's documented default
) -> Company:
    """A new company whose administrator stored Vaka settings pointing at `sim`."""
    tenant = str(uuid.uuid4())
    _, key = make_principal(tenant=tenant, roles=roles or [WRITE])
    company = Company(tenant, key)
    if sim is not None:
        r = client.post(
            SETTINGS,
            json={"ApiEndpoint": sim.url, "Username": "vaka", "Password": password},
            headers=company.headers,
        )
        assert r.status_code == 200, r.text
    return company


@pytest.fixture
def company(client: httpx.Client, make_principal: Any) -> Callable[..., Company]:
    """Factory: make_company bound to the session's client."""

    def make(sim: RunningSimulator | None, **kw: Any) -> Company:
        return make_company(client, make_principal, sim, **kw)

    return make


def start_sync(client: httpx.Client, company: Company) -> dict[str, Any]:
    """POST a sync and return its response (asserting it was accepted)."""
    r = client.post(SYNC, json={}, headers=company.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_done(
    client: httpx.Client, company: Company, sync_id: str, timeout: float = 120
) -> dict[str, Any]:
    """Poll GET /codelock/axema/usersync/{Id} until Completed or Failed."""

    def done() -> dict[str, Any] | None:
        r = client.get(f"{SYNC}/{sync_id}", headers=company.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["Status"] in (2, 3) else None

    result: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.1)
    return result


def customers(client: httpx.Client, company: Company, **params: Any) -> list[dict[str, Any]]:
    """Every customer of the company, through GET /customers pages."""
    out: list[dict[str, Any]] = []
    skip = 0
    while True:
        r = client.get(
            "/customers", params={**params, "Skip": skip, "Take": 1000}, headers=company.headers
        )
        assert r.status_code == 200, r.text
        page = r.json()
        out.extend(page["Results"])
        skip += len(page["Results"])
        if not page["Results"] or skip >= page["Total"]:
            return out
