"""`writegate jobs` over a real database: whole ids, --json, filters, clear refusals."""

from __future__ import annotations

import json
from typing import Any

from tests.console.cli import jobs_cli
from tests.console.conftest import IDLE, status_of
from tests.harness import Server


def test_list_prints_whole_ids_and_filters(server: Server, make_job: Any, tenant: str) -> None:
    """Ids are never cut, even on an 80-column terminal; --tenant/--kind/--since narrow."""
    failed, queued = make_job(tenant, "failed"), make_job(tenant)
    out = jobs_cli(server, "list", "--tenant", tenant, "--kind", IDLE, "--since", "1h")
    assert out.returncode == 0, out.stderr
    assert failed in out.stdout.split()
    assert queued in out.stdout.split()
    only = jobs_cli(server, "list", "--tenant", tenant, "--status", "failed", "--json")
    assert only.returncode == 0, only.stderr
    assert [j["id"] for j in json.loads(only.stdout)["jobs"]] == [failed]
    none = jobs_cli(server, "list", "--tenant", tenant, "--until", "2000-01-01", "--json")
    assert json.loads(none.stdout)["jobs"] == []


def test_list_pages_with_the_json_cursor(server: Server, make_job: Any, tenant: str) -> None:
    """--json gives next_cursor; --cursor continues where the page ended."""
    made = {make_job(tenant) for _ in range(3)}
    first = json.loads(
        jobs_cli(server, "list", "--tenant", tenant, "--limit", "2", "--json").stdout
    )
    assert len(first["jobs"]) == 2
    rest = jobs_cli(
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
    """A bad status, time or cursor: typer's usage error naming the option, no traceback."""
    for args in (
        ("list", "--status", "bogus"),
        ("list", "--since", "yesterday"),
        ("list", "--cursor", "nope"),
        ("retry", "--status", "nope", "--yes"),
    ):
        out = jobs_cli(server, *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr


def test_show_json_and_missing(server: Server, make_job: Any, tenant: str) -> None:
    """show prints the job (secrets masked); --json parses; an unknown id exits 1 in one line."""
    job = make_job(tenant, "failed", payload={"user": "u", "password": "p4ss"}, error="boom")
    out = jobs_cli(server, "show", job)
    assert out.returncode == 0, out.stderr
    assert f"id: {job}" in out.stdout
    assert "p4ss" not in out.stdout
    detail = json.loads(jobs_cli(server, "show", job, "--json").stdout)
    assert detail["payload"] == {"user": "u", "password": "***"}
    missing = jobs_cli(server, "show", "no-such-job")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "no job no-such-job"


def test_retry_of_a_final_job_says_so_and_fails(server: Server, make_job: Any, tenant: str) -> None:
    """Retrying a succeeded job prints that it is final and exits 1; nothing changes."""
    job = make_job(tenant, "succeeded")
    out = jobs_cli(server, "retry", job)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"job {job} already succeeded (final): only failed or cancelled jobs can be retried"
    ]
    assert status_of(server, job) == "succeeded"
    cancel = jobs_cli(server, "cancel", job)
    assert cancel.returncode == 1
    assert "already succeeded (final)" in cancel.stderr


def test_retry_and_cancel_several_ids(server: Server, make_job: Any, tenant: str) -> None:
    """Several ids: each gets a line; the exit code is 0 only when none was refused."""
    a, b = make_job(tenant, "failed"), make_job(tenant, "cancelled")
    out = jobs_cli(server, "retry", a, b)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"job {a}: queued again", f"job {b}: queued again"]
    out = jobs_cli(server, "cancel", a, b, "nope")
    assert out.returncode == 1
    assert out.stderr.strip() == "job nope: no such job"
    assert status_of(server, a) == status_of(server, b) == "cancelled"


def test_retry_by_filter_asks_unless_yes(server: Server, make_job: Any, tenant: str) -> None:
    """A filter retry asks first (no answer: nothing done); --yes acts; the audit names the CLI."""
    jobs = [make_job(tenant, "failed") for _ in range(2)]
    asked = jobs_cli(server, "retry", "--tenant", tenant, "--status", "failed", stdin="n\n")
    assert asked.returncode == 1
    assert all(status_of(server, j) == "failed" for j in jobs)
    done = jobs_cli(server, "retry", "--tenant", tenant, "--status", "failed", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == 2
    assert all(status_of(server, j) == "queued" for j in jobs)
    shown = json.loads(jobs_cli(server, "show", jobs[0], "--json").stdout)
    assert shown["audit"][0]["action"] == "bulk_retry"
    assert shown["audit"][0]["actor"].startswith("cli:")
