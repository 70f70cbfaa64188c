"""Shared fixtures: one database and one live server per test session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Server, backend, fresh_database, start_server, uid


def pytest_report_header() -> str:
    """Show which database the suite runs on."""
    return f"writegate test database: {backend()}"


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database for the whole session (SQLite file or new PostgreSQL database)."""
    with fresh_database(str(tmp_path_factory.mktemp("db"))) as url:
        yield url


@pytest.fixture(scope="session")
def server(db_url: str) -> Iterator[Server]:
    """A live writegate (uvicorn + embedded worker) on loopback."""
    srv = start_server(db_url)
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    """An HTTP client for the live server."""
    with server.client() as c:
        yield c


@pytest.fixture
def clock(server: Server) -> Iterator[Any]:
    """The server's clock; any shift a test makes is undone afterwards."""
    yield server.services.clock
    server.services.clock.reset()


@pytest.fixture
def make_principal(server: Server) -> Any:
    """Create a principal directly in the database; returns (principal, api_key)."""

    def make(
        *,
        tenant: str | None = None,
        roles: list[str] | None = None,
        name: str | None = None,
        password: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> tuple[Any, str]:
        services = server.services
        with services.db.write() as s:
            return services.auth.create(
                s,
                name=name or uid("user-"),
                tenant=tenant or uid("tenant-"),
                roles=roles or [],
                password=password,
                attrs=attrs,
            )

    return make
