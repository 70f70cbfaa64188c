"""`writegate jobs` as a real process: whole ids, --json, filters, one-line refusals, audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import select

from tests import jobkit
from tests.harness import Server, backend, uid
from tests.jobkit import status_of
from tests.system.clirun import ENTRY, one_line, writegate
from writegate.core.jobs.table import JOBS

#: a kind no module registers: its jobs stay where a test puts them (no worker takes them)
IDLE = "cli.idle"


def make_job(server: Server, tenant: str, status: str = "queued", **fields: Any) -> str:
    """`jobkit.make_job` of the idle kind unless told."""
    return jobkit.make_job(server, tenant, status, **{"kind": IDLE, **fields})


def jobs(server: Server, *args: str, stdin: str | None = None) -> Any:
    """`writegate jobs ARGS` against the server's database."""
    return writegate(server, "jobs", *args, stdin=stdin)


def test_list_prints_whole_ids_and_filters(server: Server) -> None:
    """Ids are never cut on an 80-column pipe; --tenant/--kind/--since/--status narrow."""
    tenant = uid("tenant-with-a-rather-long-name-")
    failed, queued = make_job(server, tenant, "failed"), make_job(server, tenant)
    other = make_job(server, uid("tenant-"))
    out = jobs(server, "list", "--tenant", tenant, "--kind", IDLE, "--since", "1h")
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert failed in words
    assert queued in words
    assert other not in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) > 80  # wider than the terminal
    only = jobs(server, "list", "--tenant", tenant, "--status", "failed", "--json")
    assert only.returncode == 0, only.stderr
    assert [j["id"] for j in json.loads(only.stdout)["jobs"]] == [failed]
    both = jobs(server, "list", "--tenant", tenant, "--status", "failed,queued", "--json")
    assert {j["id"] for j in json.loads(both.stdout)["jobs"]} == {failed, queued}
    old = jobs(server, "list", "--tenant", tenant, "--until", "2000-01-01", "--json")
    assert json.loads(old.stdout)["jobs"] == []
    gone = jobs(server, "list", "--tenant", tenant, "--kind", "no.such.kind", "--json")
    assert json.loads(gone.stdout)["jobs"] == []


def test_list_pages_with_the_json_cursor(server: Server) -> None:
    """--limit and --json give next_cursor; --cursor continues where the page ended."""
    tenant = uid("tenant-")
    made = {make_job(server, tenant) for _ in range(3)}
    first = json.loads(jobs(server, "list", "--tenant", tenant, "--limit", "2", "--json").stdout)
    assert len(first["jobs"]) == 2
    rest = jobs(
        server,
        "list",
        "--tenant",
        tenant,
        "--limit",
        "2",
        "--cursor",
        first["next_cursor"],
        "--json",
    )
    second = json.loads(rest.stdout)
    assert {j["id"] for j in first["jobs"] + second["jobs"]} == made
    assert second["next_cursor"] is None


def test_bad_options_are_one_line_exit_2(server: Server) -> None:
    """A bad status, time or cursor, ids with a filter, nothing to act on: one line, exit 2."""
    for args in (
        ("list", "--status", "bogus"),
        ("list", "--since", "yesterday"),
        ("list", "--cursor", "nope"),
        ("retry", "--status", "nope", "--yes"),
        ("retry", "some-id", "--status", "failed"),
        ("cancel",),
    ):
        out = jobs(server, *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert one_line(out.stderr).startswith("writegate: "), args


def test_show_json_and_missing(server: Server) -> None:
    """show prints the job (secrets masked); --json parses; an unknown id exits 1 in one line."""
    tenant = uid("tenant-")
    job = make_job(
        server, tenant, "failed", payload={"user": "u", "password": "p4ss"}, error="boom"
    )
    out = jobs(server, "show", job)
    assert out.returncode == 0, out.stderr
    assert f"id: {job}" in out.stdout
    assert "p4ss" not in out.stdout
    detail = json.loads(jobs(server, "show", job, "--json").stdout)
    assert detail["id"] == job
    assert detail["payload"] == {"user": "u", "password": "***"}
    assert detail["error"] == "boom"
    missing = jobs(server, "show", "no-such-job")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "writegate: no job no-such-job"


def test_retry_of_a_succeeded_job_says_it_is_final(server: Server) -> None:
    """Retrying a succeeded job prints one line saying it is final and exits 1; nothing changes."""
    job = make_job(server, uid("tenant-"), "succeeded")
    out = jobs(server, "retry", job)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"job {job} already succeeded (final): only failed or cancelled jobs can be retried"
    ]
    assert status_of(server, job) == "succeeded"
    cancel = jobs(server, "cancel", job)
    assert cancel.returncode == 1
    assert cancel.stderr.strip().splitlines() == [
        f"job {job} is already succeeded (final): only queued or running jobs can be cancelled"
    ]


def test_retry_and_cancel_several_ids(server: Server) -> None:
    """Several ids: a line each; exit 0 only when none was refused; the audit names the OS user."""
    tenant = uid("tenant-")
    a, b = make_job(server, tenant, "failed"), make_job(server, tenant, "cancelled")
    out = jobs(server, "retry", a, b)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"job {a}: queued again", f"job {b}: queued again"]
    assert status_of(server, a) == status_of(server, b) == "queued"
    out = jobs(server, "cancel", a, b, "nope")
    assert out.returncode == 1
    assert out.stdout.splitlines() == [f"job {a}: cancelled", f"job {b}: cancelled"]
    assert out.stderr.strip() == "job nope: no such job"
    assert status_of(server, a) == status_of(server, b) == "cancelled"
    audit = json.loads(jobs(server, "show", a, "--json").stdout)["audit"]
    assert [e["action"] for e in audit] == ["bulk_cancel", "bulk_retry"]
    assert all(e["actor"].startswith("cli:") and e["actor"] != "cli:" for e in audit)


def test_retry_refused_while_the_key_is_held(server: Server) -> None:
    """A cancelled job whose exclusive key an active job holds: one line naming it, exit 1."""
    tenant, key = uid("tenant-"), uid("company:")
    first = make_job(server, tenant, "cancelled", exclusive_key=key)
    second = make_job(server, tenant, "running", exclusive_key=key)
    out = jobs(server, "retry", first)
    assert out.returncode == 1, out.stdout
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"job {first} cannot be retried: its exclusive key is held by active job {second}"
    ]
    assert status_of(server, first) == "cancelled"
    assert jobs(server, "cancel", second).returncode == 0
    again = jobs(server, "retry", first)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"job {first}: queued again"
    jobs(server, "cancel", first)


def test_retry_by_filter_asks_unless_yes(server: Server) -> None:
    """A filter asks first (answer no: nothing done, exit 1); --yes acts and is audited."""
    tenant = uid("tenant-")
    made = [make_job(server, tenant, "failed") for _ in range(2)]
    asked = jobs(server, "retry", "--tenant", tenant, "--status", "failed", stdin="n\n")
    assert asked.returncode == 1
    assert all(status_of(server, j) == "failed" for j in made)
    done = jobs(server, "retry", "--tenant", tenant, "--status", "failed", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == 2
    assert all(status_of(server, j) == "queued" for j in made)
    shown = json.loads(jobs(server, "show", made[0], "--json").stdout)
    assert shown["audit"][0]["action"] == "bulk_retry"
    assert shown["audit"][0]["detail"]["filter"] == {"status": "failed", "tenant": tenant}
    out = jobs(server, "cancel", "--tenant", tenant, "--yes")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == sorted(f"job {j}: cancelled" for j in made)


def test_a_write_waits_for_the_servers_writer(server: Server) -> None:
    """`jobs cancel` while the server holds the job (SQLite: its write lock) waits, then acts."""
    job = make_job(server, uid("tenant-"))
    env = {**os.environ, "WRITEGATE_DATABASE_URL": server.settings.database_url}
    # Longer than pysqlite's default 5-second lock timeout: only writegate's busy_timeout waits.
    hold = 6.0 if backend() == "sqlite" else 1.0
    with server.services.db.write() as s:
        s.execute(select(JOBS.c.id).where(JOBS.c.id == job).with_for_update())
        cli = subprocess.Popen(
            [sys.executable, *ENTRY, "jobs", "cancel", job],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(hold)
        assert cli.poll() is None  # still waiting
        assert status_of(server, job) == "queued"
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert out.strip() == f"job {job}: cancelled"
    assert status_of(server, job) == "cancelled"
