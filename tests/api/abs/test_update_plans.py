"""ABS updates look their packages up by id, whatever the table's size (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from tests.api.abs.conftest import assert_ok, call
from tests.harness import Server, backend, fresh_database, start_server, uid, wait_for
from writegate.modules.abs import service

pytestmark = pytest.mark.skipif(
    backend() != "postgresql", reason="PostgreSQL's plans; SQLite looks each row up by id"
)

GROWN = 20_000


@pytest.fixture
def abs_server(tmp_path: Path) -> Iterator[Server]:
    """A server with ABS alone, on a database of its own."""
    with fresh_database(str(tmp_path)) as url:
        srv = start_server(url, modules=["abs"], embedded_worker=False)
        yield srv
        srv.stop()


def _packages_stats(server: Server) -> tuple[int, int]:
    """(rows read by sequential scans of `abs_packages`, rows updated in it), as flushed."""
    url = server.services.db.engine.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        row = conn.execute(
            "SELECT seq_tup_read, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'abs_packages'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_regression_an_update_batch_scanned_every_package(abs_server: Server) -> None:
    """A batch's UPDATE joined its rows (planned as 100, whatever the batch) to the table
    by a hash: a sequential scan of every package for each batch of updates."""
    code = uid("EN").upper()
    assert service.register_client(abs_server.services, code, name="plans")
    with abs_server.services.db.write() as s:
        _, key = abs_server.services.auth.create(
            s, name=uid("user-"), tenant=code, roles=["abs:write"]
        )
        # Another customer's packages: ids and versions below the counters' (never handed out).
        s.execute(
            text(
                "INSERT INTO abs_packages SELECT -g, md5(g::text), 'OTHER', -g, 0, '', '', 0,"
                " NULL, '', '', 'u', now(), 'u', now() FROM generate_series(1, :n) AS g"
            ),
            {"n": GROWN},
        )
    headers = {"x-api-key": key}
    with abs_server.client() as client:
        package = assert_ok(call(client, "putDb", {"client_code": code}, headers))
        read_before, updated_before = _packages_stats(abs_server)
        for step in range(5):
            body = {
                "client_code": code,
                "id": package["id"],
                "version": package["version"],
                "processing_step": f"STEP{step}",
            }
            package = assert_ok(call(client, "putDb", body, headers))
    # A backend reports its counters some time after its transaction: wait for the 5 updates.
    read, _ = wait_for(
        lambda: (s := _packages_stats(abs_server))[1] - updated_before >= 5 and s, timeout=30
    )
    assert read - read_before < GROWN, f"{read - read_before} packages read by scans"
