"""`writegate backup DEST`: a live SQLite database copied whole and usable, while it is
written; refusals in one line, nothing written."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from tests.harness import backend, start_server
from tests.system.clirun import one_line, run_cli
from tests.system.obskit import entity_number

sqlite_only = pytest.mark.skipif(backend() != "sqlite", reason="copies an SQLite file")


@sqlite_only
def test_backup_of_a_live_database_holds_every_accepted_write_and_serves(tmp_path: Path) -> None:
    """While clients' upserts are accepted and the embedded worker runs them, the backup
    holds every job accepted before it started, checks whole, and a server started on it
    (a restore) answers for them."""
    url = f"sqlite:///{tmp_path}/live.db"
    server = start_server(url, modules=["jef_one"])
    accepted: list[str] = []
    stop = threading.Event()

    def post() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while not stop.is_set():
                number = entity_number()
                body = {"entity_number": number, "entity_name": f"E {number}", "is_active": True}
                r = c.post("/one-entities-post-one", json=body)
                if r.status_code == 202:
                    accepted.append(r.json()["job_id"])

    clients = [threading.Thread(target=post) for _ in range(4)]
    for t in clients:
        t.start()
    try:
        while len(accepted) < 200:
            stop.wait(0.05)
        before = list(accepted)
        dest = tmp_path / "copies" / "backup.db"
        dest.parent.mkdir()
        out = run_cli("backup", str(dest), cwd=tmp_path, WRITEGATE_DATABASE_URL=url)
        during = len(accepted) - len(before)
    finally:
        stop.set()
        for t in clients:
            t.join(30)
        server.stop()
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"backed up {tmp_path}/live.db to {dest} ("), out.stdout
    assert during > 0  # the clients were being answered while it ran
    assert [p.name for p in dest.parent.iterdir()] == ["backup.db"]  # no partial file left
    copy = sqlite3.connect(dest)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ids = {row[0] for row in copy.execute("SELECT id FROM jobs")}
    finally:
        copy.close()
    assert set(before) <= ids
    restored = start_server(f"sqlite:///{dest}", modules=["jef_one"], embedded_worker=False)
    try:
        with restored.client() as c:
            assert c.get("/readyz").json()["schema"] == "at head"
            for job_id in (before[0], before[-1]):
                r = c.get("/jef-one-get-job-by-job-id", params={"job_id": job_id})
                assert (r.status_code, r.json()["job_id"]) == (200, job_id), r.text
    finally:
        restored.stop()


@sqlite_only
def test_backup_never_overwrites_and_never_creates_a_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.db"
    assert run_cli("migrate", cwd=tmp_path, WRITEGATE_DATABASE_URL=url).returncode == 0
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"keep me")
    cases = [
        (url, str(taken), f"writegate: {taken} exists: a backup never overwrites a file"),
        (url, str(tmp_path / "no" / "b.db"), f"writegate: no directory {tmp_path}/no"),
        (
            f"sqlite:///{tmp_path}/missing.db",
            str(tmp_path / "b.db"),
            f"writegate: no database file at {tmp_path}/missing.db",
        ),
    ]
    for db, dest, message in cases:
        out = run_cli("backup", dest, cwd=tmp_path, WRITEGATE_DATABASE_URL=db)
        assert (out.returncode, one_line(out.stderr)) == (2, message)
    assert taken.read_bytes() == b"keep me"
    assert not (tmp_path / "missing.db").exists()
    assert not (tmp_path / "b.db").exists()


@sqlite_only
def test_backup_of_a_file_that_is_no_database_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_bytes(b"not a database, " * 100)
    out = run_cli(
        "backup",
        str(tmp_path / "b.db"),
        cwd=tmp_path,
        WRITEGATE_DATABASE_URL=f"sqlite:///{tmp_path}/notes.db",
    )
    assert out.returncode == 1
    assert one_line(out.stderr).startswith(f"writegate: backup of {tmp_path}/notes.db failed: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no partial file


def test_backup_on_postgresql_points_at_its_own_tools(tmp_path: Path) -> None:
    """Nothing to copy from a server: the answer names pg_dump (no connection is made)."""
    out = run_cli(
        "backup",
        str(tmp_path / "b.db"),
        cwd=tmp_path,
        WRITEGATE_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
    )
    assert out.returncode == 2
    assert "pg_dump" in one_line(out.stderr)
    assert not (tmp_path / "b.db").exists()
