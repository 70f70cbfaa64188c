"""`writegate jobs prune` as a real process: only final jobs finished before the cut-off go."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from tests.harness import Server, uid
from tests.system.clirun import one_line, writegate
from tests.system.test_cli_jobs import make_job
from writegate.core.jobs import JobRow


def _backdate(server: Server, ids: list[str], days: float) -> None:
    """Make jobs look created (and, if final, finished) `days` ago; the CLI uses real time."""
    then = server.services.clock.now() - timedelta(days=days)
    with server.services.db.write() as s:
        s.execute(update(JobRow).where(JobRow.id.in_(ids)).values(created_at=then))
        s.execute(
            update(JobRow)
            .where(JobRow.id.in_(ids), JobRow.finished_at.is_not(None))
            .values(finished_at=then)
        )


def _present(server: Server, ids: list[str]) -> set[str]:
    with server.services.db.read() as s:
        return set(s.scalars(select(JobRow.id).where(JobRow.id.in_(ids))))


def test_prune_deletes_only_final_jobs_older_than_the_cut_off(bare_server: Server) -> None:
    """--dry-run counts and deletes nothing; prune deletes old final jobs of the statuses only."""
    server, tenant = bare_server, uid("tenant-")
    old = {s: make_job(server, tenant, s) for s in ("succeeded", "failed", "cancelled")}
    active = [make_job(server, tenant), make_job(server, tenant, "running")]
    young = make_job(server, tenant, "succeeded")
    _backdate(server, [*old.values(), *active], days=3)
    _backdate(server, [young], days=1)
    everything = [*old.values(), *active, young]

    dry = writegate(server, "jobs", "prune", "--older-than", "2d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would delete 3 ")
    assert _present(server, everything) == set(everything)

    some = writegate(server, "jobs", "prune", "--older-than", "48h", "--status", "failed")
    assert some.returncode == 0, some.stderr
    assert some.stdout.startswith("deleted 1 ")
    assert _present(server, everything) == set(everything) - {old["failed"]}

    rest = writegate(server, "jobs", "prune", "--older-than", "2880m")
    assert rest.returncode == 0, rest.stderr
    assert rest.stdout.startswith("deleted 2 ")
    assert _present(server, everything) == {*active, young}


def test_prune_bad_options_are_one_line_exit_2(bare_server: Server) -> None:
    """A bad duration or a non-final status: one usage line, exit 2, nothing deleted."""
    job = make_job(bare_server, uid("tenant-"), "failed")
    _backdate(bare_server, [job], days=30)
    for args in (
        ("--older-than", "7 days"),
        ("--older-than", "0d"),
        ("--older-than", "-1h"),
        ("--older-than", "7d", "--status", "queued"),
        ("--older-than", "7d", "--status", "bogus"),
        ("--older-than", "800000d"),  # regression: before the year 1, an OverflowError traceback
        ("--older-than", "3000000d"),
    ):
        out = writegate(bare_server, "jobs", "prune", *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert one_line(out.stderr).startswith("writegate: --"), args
    assert _present(bare_server, [job]) == {job}
