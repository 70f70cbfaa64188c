"""Read-only commands never create, migrate or write to the database they are pointed at."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from tests.harness import backend, fresh_database
from tests.system.clirun import one_line, run_cli
from writegate.core.db import Database

READ_ONLY = [["jobs", "list"], ["jobs", "show", "some-id"], ["principals", "list"]]
#: writes refuse a database that does not exist yet just the same: only `migrate`, `serve` and
#: `worker` create or migrate a schema
OPERATOR_WRITES = [
    ["jobs", "retry", "some-id"],
    ["jobs", "cancel", "some-id"],
    ["jobs", "prune", "--older-than", "7d"],
    ["principals", "create", "--name", "n", "--tenant", "t"],
    ["principals", "revoke", "n"],
    # the modules' own commands
    ["abs", "add-client", "C1"],
    ["abs", "clients"],
    ["bokamera", "rotate-key"],
]


def _tables(url: str) -> list[str]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("command", READ_ONLY + OPERATOR_WRITES)
def test_empty_database_is_left_alone(tmp_path: Path, command: list[str]) -> None:
    """On a missing/empty database: one line saying to run `writegate migrate`, nothing made."""
    with fresh_database(str(tmp_path)) as url:
        out = run_cli(*command, cwd=tmp_path, WRITEGATE_DATABASE_URL=url)
        assert out.returncode == 1, out.stderr
        assert "run `writegate migrate`" in one_line(out.stderr)
        assert out.stdout == ""
        if backend() == "sqlite":
            assert list(tmp_path.iterdir()) == []  # no SQLite file, no -wal, no lock file
        else:
            assert _tables(url) == []


def test_mistyped_default_sqlite_path_creates_nothing(tmp_path: Path) -> None:
    """The default ./writegate.db is not created by `jobs list` in a directory without one."""
    out = run_cli("jobs", "list", cwd=tmp_path)
    assert out.returncode == 1
    assert one_line(out.stderr) == (
        "writegate: no database file at ./writegate.db: run `writegate migrate` "
        "(or check WRITEGATE_DATABASE_URL)"
    )
    assert list(tmp_path.iterdir()) == []


def test_database_behind_the_release_is_refused(tmp_path: Path) -> None:
    """A schema missing one of this release's revisions is refused, and left as it was."""
    with fresh_database(str(tmp_path)) as url:
        assert run_cli("migrate", cwd=tmp_path, WRITEGATE_DATABASE_URL=url).returncode == 0
        db = Database(url)
        try:
            with db.write_engine.begin() as conn:
                heads = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
                abs_head = next(h for h in heads if h.startswith("abs"))
                conn.execute(
                    text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": abs_head}
                )
            out = run_cli("jobs", "list", cwd=tmp_path, WRITEGATE_DATABASE_URL=url)
            assert out.returncode == 1
            assert "is not migrated to this release: run `writegate migrate`" in one_line(
                out.stderr
            )
            with db.engine.connect() as conn:
                after = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
                assert abs_head not in list(after)
            with db.write_engine.begin() as conn:
                conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": abs_head})
            again = run_cli("jobs", "list", cwd=tmp_path, WRITEGATE_DATABASE_URL=url)
            assert again.returncode == 0, again.stderr
        finally:
            db.dispose()


def test_no_auto_migrate_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    """With WRITEGATE_AUTO_MIGRATE=false, `serve` and `worker` say to run migrate first."""
    with fresh_database(str(tmp_path)) as url:
        for command in (["serve", "--no-worker"], ["worker"]):
            out = run_cli(
                *command, cwd=tmp_path, WRITEGATE_DATABASE_URL=url, WRITEGATE_AUTO_MIGRATE="false"
            )
            assert out.returncode == 1, out.stderr
            line = one_line(out.stderr)
            assert "has no schema and WRITEGATE_AUTO_MIGRATE is false" in line  # not "is missing"
            assert "run `writegate migrate` first" in line
            if backend() == "postgresql":
                assert _tables(url) == []


def test_schema_from_a_newer_release_is_left_alone(tmp_path: Path) -> None:
    """On a schema migrated by a newer release, `migrate` is one line and serve/worker run."""
    import subprocess

    import httpx

    from tests.harness import free_port, spawn, stop_processes, wait_for

    with fresh_database(str(tmp_path)) as url:
        assert run_cli("migrate", cwd=tmp_path, WRITEGATE_DATABASE_URL=url).returncode == 0
        db = Database(url)
        try:
            with db.write_engine.begin() as conn:
                conn.execute(text("INSERT INTO alembic_version VALUES ('zz_future_0001')"))
        finally:
            db.dispose()
        out = run_cli("migrate", cwd=tmp_path, WRITEGATE_DATABASE_URL=url)
        assert out.returncode == 1
        assert "migrated by a newer writegate" in one_line(out.stderr)
        assert run_cli("jobs", "list", cwd=tmp_path, WRITEGATE_DATABASE_URL=url).returncode == 0

        port = free_port()
        env = {"WRITEGATE_DATABASE_URL": url, "WRITEGATE_LOG_LEVEL": "warning"}
        log = tmp_path / "procs.log"
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs.append(spawn(["serve", "--port", str(port)], env, log=str(log), cwd=tmp_path))
            procs.append(spawn(["worker"], env, log=str(log), cwd=tmp_path))

            def healthy() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(healthy, timeout=60)
            wait_for(lambda: "worker " in log.read_text(), timeout=60)
            assert all(p.poll() is None for p in procs), log.read_text()
            assert "Traceback" not in log.read_text()
        finally:
            stop_processes(procs)
