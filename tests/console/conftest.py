"""Fixtures for the console and admin API tests: operators, and jobs in a chosen state."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests import jobkit
from tests.harness import Server, uid
from tests.jobkit import status_of

__all__ = ["IDLE", "headers", "status_of"]

#: a kind no module registers: its jobs stay where a test puts them (no worker takes them)
IDLE = "console.idle"


def headers(key: str) -> dict[str, str]:
    """API key headers."""
    return {"x-api-key": key}


@pytest.fixture
def tenant() -> str:
    """A fresh tenant name."""
    return uid("tenant-")


@pytest.fixture
def admin(make_principal: Any) -> dict[str, str]:
    """Headers of a superadmin (sees every tenant, may act)."""
    _, key = make_principal(roles=["superadmin"])
    return headers(key)


@pytest.fixture
def make_job(server: Server) -> Any:
    """`jobkit.make_job` on the test's server, of the idle kind unless told."""

    def make(tenant: str, status: str = "queued", *, kind: str = IDLE, **fields: Any) -> str:
        return jobkit.make_job(server, tenant, status, kind=kind, **fields)

    return make


def sign_in(client: httpx.Client, name: str, password: str) -> str:
    """Sign in through the console's form; returns the session's CSRF token."""
    r = client.get("/console/login")
    assert r.status_code == 200, r.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert csrf is not None
    r = client.post(
        "/console/login",
        data={"name": name, "password": password, "csrf": csrf.group(1), "next": "/console"},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console", r.headers["location"]
    page = client.get("/console/jobs")
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)
