"""serve and worker warn when PostgreSQL will never vacuum writegate's tables."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.harness import Server, fresh_database, start_server, vacuum_settings, wait_for
from writegate.core.maintenance import check_vacuum, vacuum_warnings


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "writegate.maintenance"]


def test_the_warnings_name_the_settings_that_are_off(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """One warning, logged, per setting that SHOW says is off; none on SQLite."""
    expected = vacuum_warnings(vacuum_settings(server))
    with caplog.at_level(logging.WARNING, logger="writegate.maintenance"):
        assert check_vacuum(server.services.db) == len(expected)
    assert _logged(caplog) == expected


def test_serve_warns_as_its_housekeeping_starts(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A `serve` with its embedded worker logs the same warnings once it has started."""
    expected = vacuum_warnings(vacuum_settings(server))
    with (
        caplog.at_level(logging.WARNING, logger="writegate.maintenance"),
        fresh_database(str(tmp_path)) as url,
    ):
        started = start_server(url, embedded_worker=True, modules=["jef_one"])
        try:
            wait_for(lambda: len(_logged(caplog)) >= len(expected), timeout=10)
            time.sleep(0.2)  # nothing more comes
        finally:
            started.stop()
    assert _logged(caplog) == expected
