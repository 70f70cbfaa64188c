"""serve and worker warn when PostgreSQL will never vacuum writegate's tables."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from tests.harness import Server, start_server
from writegate.core.maintenance import VACUUM_SETTINGS, check_vacuum


def _settings(server: Server) -> dict[str, str]:
    """The server's own answer to SHOW, for each setting the check reads."""
    with server.services.db.read() as s:
        return {name: str(s.scalar(text(f"SHOW {name}"))) for name in VACUUM_SETTINGS}


def test_the_warnings_name_the_settings_that_are_off(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """One warning, logged, per setting that SHOW says is off; none on SQLite."""
    with caplog.at_level(logging.WARNING, logger="writegate.maintenance"):
        warnings = check_vacuum(server.services.db)
    logged = [r.getMessage() for r in caplog.records if r.name == "writegate.maintenance"]
    assert logged == warnings
    if not server.services.db.is_postgres:
        assert warnings == []
        return
    off = [name for name, value in _settings(server).items() if value != "on"]
    assert [w.split()[1] for w in warnings] == off


def test_serve_warns_at_start_up(
    server: Server, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A `serve` starting on the database logs the same warnings at start-up."""
    expected = check_vacuum(server.services.db)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="writegate.maintenance"):
        started = start_server(db_url, embedded_worker=False)
        started.stop()
    logged = [r.getMessage() for r in caplog.records if r.name == "writegate.maintenance"]
    assert logged == expected
