"""The CLI parses its arguments before it imports the web app, the ORM or the modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import fresh_database
from tests.system.clirun import run_cli
from writegate.commands.common import version_dirs
from writegate.commands.lazy import COMMANDS, resolve
from writegate.core.services import Services
from writegate.settings import Settings

PROBE = """
import json, sys
from writegate.cli import main
heavy = json.loads(sys.argv[2])
sys.argv = ["writegate", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
sys.stderr.write(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""
#: what `--help`, `--version` and a usage error never load
WEB_AND_DATABASE = ("fastapi", "sqlalchemy", "pydantic_settings", "uvicorn")
WEB_AND_DATABASE += ("writegate.app", "writegate.modules")
#: what the jobs and principals commands never load: each works with SQLAlchemy Core on the
#: one plain connection it checked the database on
BEYOND_CORE_SQL = ("sqlalchemy.orm", "fastapi", "uvicorn", "alembic", "prometheus_client")
BEYOND_CORE_SQL += ("argon2", "uuid_utils", "writegate.app", "writegate.modules")
BEYOND_CORE_SQL += ("writegate.core.services", "writegate.core.jobs.model", "writegate.console")
BEYOND_CORE_SQL += ("writegate.core.auth", "writegate.core.db.database")
#: every jobs and principals command, on the job JOB and the principal ann (in this order)
CORE_SQL_COMMANDS = [
    ["jobs", "list"],
    ["jobs", "list", "--json", "--status", "failed"],
    ["jobs", "show", "JOB"],
    ["jobs", "show", "JOB", "--json"],
    ["jobs", "cancel", "JOB"],
    ["jobs", "retry", "JOB", "--json"],
    ["jobs", "cancel", "--tenant", "t", "--yes"],
    ["jobs", "retry", "--status", "cancelled", "--yes"],
    ["jobs", "prune", "--older-than", "7d", "--dry-run"],
    ["jobs", "prune", "--older-than", "7d"],
    ["principals", "create", "--name", "ann", "--tenant", "t", "--roles", "operator"],
    ["principals", "list"],
    ["principals", "revoke", "ann"],
]


def _loaded(
    args: list[str], cwd: Path, heavy: tuple[str, ...] = WEB_AND_DATABASE, **env: str
) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(heavy)],
        cwd=cwd,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("WRITEGATE_")}, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result: dict[str, object] = json.loads(out.stderr.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        [],
        ["jobs", "--help"],
        ["jobs", "list", "--help"],
        ["principals", "--help"],
        ["principals", "create", "--help"],
        ["jobs", "list", "--status", "bogus"],
    ],
)
def test_help_and_usage_errors_import_no_web_or_database_code(
    tmp_path: Path, args: list[str]
) -> None:
    """`writegate --help` and the jobs/principals helps load neither FastAPI nor SQLAlchemy."""
    assert _loaded(args, tmp_path)["loaded"] == []


def _queued_job(url: str) -> str:
    """A job of a kind no worker takes, enqueued on a migrated database."""
    services = Services.build(Settings(database_url=url, modules=[]))
    try:
        with services.db.write() as s:
            return services.jobs.enqueue(s, kind="startup.idle", payload={}, tenant="t").id
    finally:
        services.close()


def test_jobs_and_principals_commands_load_no_orm_nor_services(tmp_path: Path) -> None:
    """Each `jobs` and `principals` command checks the database, then works with Core alone."""
    with fresh_database(str(tmp_path)) as url:
        for args in CORE_SQL_COMMANDS:
            argv = [a.replace("JOB", "no-such-job") for a in args]
            refused = _loaded(argv, tmp_path, BEYOND_CORE_SQL, WRITEGATE_DATABASE_URL=url)
            assert refused == {"code": 1, "loaded": []}, argv
        assert run_cli("migrate", cwd=tmp_path, WRITEGATE_DATABASE_URL=url).returncode == 0
        job = _queued_job(url)
        for args in CORE_SQL_COMMANDS:
            argv = [a.replace("JOB", job) for a in args]
            done = _loaded(argv, tmp_path, BEYOND_CORE_SQL, WRITEGATE_DATABASE_URL=url)
            assert done == {"code": 0, "loaded": []}, argv
        # The probe itself can see what it forbids: a module's command builds the services.
        clients = _loaded(["abs", "clients"], tmp_path, BEYOND_CORE_SQL, WRITEGATE_DATABASE_URL=url)
        assert clients["code"] == 0, clients
        loaded = clients["loaded"]
        assert isinstance(loaded, list)
        assert {"sqlalchemy.orm", "writegate.core.services"} <= set(loaded)


def test_registry_help_matches_each_command() -> None:
    """Each lazily registered sub-command's help line is the command's own."""
    for name, entry in COMMANDS.items():
        command = resolve(name, entry)
        assert command.get_short_help_str(500) == entry.help, name
        assert command.hidden == entry.hidden, name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_registered_command_runs(tmp_path: Path, name: str) -> None:
    """`writegate NAME --help` works for every sub-command, module tools included."""
    out = run_cli(name, "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"Usage: writegate {name}" in out.stdout


def test_root_help_lists_the_registry(tmp_path: Path) -> None:
    """`writegate --help` lists every visible sub-command with its help line."""
    out = run_cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    for name, entry in COMMANDS.items():
        assert (name in out.stdout) is not entry.hidden, name


def test_version_dirs_are_the_apps() -> None:
    """The CLI's migration directories are the app's (it reads them without importing app)."""
    from writegate.app import migration_dirs
    from writegate.settings import Settings

    assert version_dirs() == migration_dirs(Settings(modules=[]))
