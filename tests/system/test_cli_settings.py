"""Settings as an operator writes them: `.env`, `a,b` lists, and one line for a bad value."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import free_port, fresh_database
from tests.system.clirun import one_line, run_cli

BAD = [
    ("WRITEGATE_LOG_LEVEL", "verbose", "WRITEGATE_LOG_LEVEL='verbose'"),
    ("WRITEGATE_PORT", "eighty", "WRITEGATE_PORT='eighty'"),
    ("WRITEGATE_DATABASE_URL", "writegate.db", "not a database URL"),
    ("WRITEGATE_DATABASE_URL", "mysql://u@h/db", "unsupported database 'mysql'"),
    ("WRITEGATE_DATABASE_URL", "postgresql://u:secret@h:port/db", "malformed database URL"),
    ("WRITEGATE_MODULES", '["jef_one"', "not a JSON list"),
    ("WRITEGATE_MODULES", "jef-one", "unknown module 'jef-one'"),
    ("WRITEGATE_WORKER_CONCURRENCY", "0", "WRITEGATE_WORKER_CONCURRENCY='0'"),
    # Regression: every process failed at start-up with a TypeError traceback.
    ("WRITEGATE_DATABASE_URL", "sqlite:///:memory:", "in memory is not shared"),
    # Regression: accepted, then every housekeeping run's prune failed (OverflowError).
    ("WRITEGATE_JOB_RETENTION_DAYS", "3000000", "less than or equal to 36500"),
]


COMMANDS = [
    ["jobs", "list"],
    ["migrate"],
    ["serve"],
    ["worker"],
    ["config", "show"],
    ["abs", "clients"],
]


@pytest.mark.parametrize(
    ("command", "name", "value", "said"),
    [(["jobs", "list"], *bad) for bad in BAD] + [(c, *BAD[0]) for c in COMMANDS[1:]],
)
def test_bad_setting_is_one_line_and_exit_2(
    tmp_path: Path, command: list[str], name: str, value: str, said: str
) -> None:
    """Every command refuses a bad setting with one line naming it, exit 2, nothing written."""
    out = run_cli(*command, cwd=tmp_path, **{name: value})
    assert out.returncode == 2, out.stderr
    line = one_line(out.stderr)
    assert line.startswith(f"writegate: bad setting {name}"), line
    assert said in line
    assert "secret" not in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["serve"], ["worker"]])
def test_bad_module_setting_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    """A bad value of an enabled module's own settings stops serve and worker the same way."""
    out = run_cli(*command, cwd=tmp_path, WRITEGATE_IKONOMIKAL_MAX_ROWS="0")
    assert out.returncode == 2, out.stderr
    line = one_line(out.stderr)
    assert line.startswith("writegate: bad setting WRITEGATE_IKONOMIKAL_MAX_ROWS='0'"), line
    assert list(tmp_path.iterdir()) == []


def test_dotenv_feeds_module_settings_as_the_core_settings(tmp_path: Path) -> None:
    """A module's settings read the same `.env`: a bad value there stops `worker` in one line."""
    (tmp_path / ".env").write_text("WRITEGATE_IKONOMIKAL_MAX_ROWS=0\n")
    out = run_cli("worker", cwd=tmp_path, timeout=60)
    assert out.returncode == 2, out.stderr
    line = one_line(out.stderr)
    assert line.startswith("writegate: bad setting WRITEGATE_IKONOMIKAL_MAX_ROWS='0'"), line
    assert [p.name for p in tmp_path.iterdir()] == [".env"]
    (tmp_path / ".env").write_text("WRITEGATE_IKONOMIKAL_MAX_ROWS=77\n")
    probe = "from writegate.modules.ikonomikal.settings import IkonomikalSettings as S; "
    probe += "print(S().max_rows)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRITEGATE_")}
    read = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert read.stdout == "77\n", read.stderr


def test_two_bad_settings_are_two_lines(tmp_path: Path) -> None:
    """Each bad setting gets its own line."""
    out = run_cli("jobs", "list", cwd=tmp_path, WRITEGATE_LOG_LEVEL="loud", WRITEGATE_PORT="x")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2, out.stderr
    assert "WRITEGATE_PORT='x'" in lines[0]
    assert "WRITEGATE_LOG_LEVEL='loud'" in lines[1]


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--no-worker"], ["worker"]])
def test_unreachable_database_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    """A database that cannot be opened is one line (password hidden), not a traceback."""
    url = f"postgresql://writegate:secret@127.0.0.1:{free_port()}/writegate"
    out = run_cli(*command, cwd=tmp_path, WRITEGATE_DATABASE_URL=url)
    assert out.returncode == 2, out.stderr
    line = one_line(out.stderr)
    assert line.startswith("writegate: cannot use database postgresql://writegate:***@")
    assert "secret" not in line
    missing_dir = f"sqlite:///{tmp_path}/no/such/dir/writegate.db"
    out = run_cli(*command, cwd=tmp_path, WRITEGATE_DATABASE_URL=missing_dir)
    assert out.returncode == 2, out.stderr
    assert "unable to open database file" in one_line(out.stderr)
    # Regression: a file that is not a database passed the check (SQLite answers SELECT 1
    # without reading it), and start-up then failed with a traceback.
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n")
    out = run_cli(*command, cwd=tmp_path, WRITEGATE_DATABASE_URL=f"sqlite:///{junk}")
    assert out.returncode == 2, out.stderr
    assert "file is not a database" in one_line(out.stderr)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    """A `.env` in the working directory sets values; a real variable overrides it."""
    (tmp_path / ".env").write_text(
        "WRITEGATE_PORT=9123\nWRITEGATE_LOG_LEVEL=DEBUG\nWRITEGATE_MODULES=jef_one,abs\n"
        "OTHER_TOOL_SETTING=ignored\n"
    )
    shown = run_cli("config", "show", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "WRITEGATE_PORT=9123\n" in shown.stdout
    assert "WRITEGATE_LOG_LEVEL=debug\n" in shown.stdout
    assert "WRITEGATE_MODULES=jef_one,abs\n" in shown.stdout
    again = run_cli("config", "show", cwd=tmp_path, WRITEGATE_PORT="9200")
    assert "WRITEGATE_PORT=9200\n" in again.stdout
    (tmp_path / ".env").write_text("WRITEGATE_LOG_LEVEL=verbose\n")
    bad = run_cli("config", "show", cwd=tmp_path)
    assert bad.returncode == 2
    assert "WRITEGATE_LOG_LEVEL='verbose'" in one_line(bad.stderr)


@pytest.mark.parametrize(
    ("value", "modules"),
    [
        ("jef_one,abs", "jef_one,abs"),
        (" jef_one , abs ", "jef_one,abs"),
        ('["jef_one","abs"]', "jef_one,abs"),
        ("ikonomikal", "ikonomikal"),
    ],
)
def test_lists_take_commas_or_json(tmp_path: Path, value: str, modules: str) -> None:
    """WRITEGATE_MODULES accepts `a,b` as well as a JSON list."""
    out = run_cli("config", "show", cwd=tmp_path, WRITEGATE_MODULES=value)
    assert out.returncode == 0, out.stderr
    assert f"WRITEGATE_MODULES={modules}\n" in out.stdout


def test_comma_modules_run_a_real_migrate(tmp_path: Path) -> None:
    """`WRITEGATE_MODULES=jef_one,abs writegate migrate` works end to end."""
    with fresh_database(str(tmp_path)) as url:
        out = run_cli(
            "migrate", cwd=tmp_path, WRITEGATE_DATABASE_URL=url, WRITEGATE_MODULES="jef_one,abs"
        )
        assert out.returncode == 0, out.stderr
        assert "schema up to date" in out.stdout


def test_version(tmp_path: Path) -> None:
    """`writegate --version` prints the package version."""
    import writegate

    out = run_cli("--version", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout == f"writegate {writegate.__version__}\n"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["worker", "--concurrency", "0"], "--concurrency"),  # silently became 16
        (["worker", "--concurrency", "-3"], "--concurrency"),  # ran no threaded job, ever
        (["worker", "--concurrency", "100000"], "--concurrency"),
        (["worker", "--metrics-port", "70000"], "--metrics-port"),  # an OverflowError
        (["serve", "--port", "70000"], "--port"),  # bound port 4464
        (["serve", "--workers", "0"], "--workers"),
    ],
)
def test_regression_out_of_range_options_were_accepted(
    tmp_path: Path, args: list[str], option: str
) -> None:
    """Options out of their setting's range are usage errors (exit 2), as the settings are;
    nothing starts and nothing is written."""
    out = run_cli(*args, cwd=tmp_path, timeout=30)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"Invalid value for '{option}'" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_regression_a_metrics_port_in_use_was_a_traceback(tmp_path: Path) -> None:
    """`worker --metrics-port P` with P taken: one line naming it, exit 2 (an OSError
    traceback, with the housekeeping already started)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = f"sqlite:///{tmp_path}/w.db"
        out = run_cli(
            "worker", "--metrics-port", str(port), cwd=tmp_path, WRITEGATE_DATABASE_URL=db
        )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last == f"writegate: cannot serve /metrics on 127.0.0.1:{port}: Address already in use"


def test_regression_config_show_left_out_the_modules_settings(tmp_path: Path) -> None:
    """`config show` prints each enabled module's settings too (from `.env` as well), and a
    bad one is one line and exit 2 with nothing printed (it printed the core's alone, exit 0)."""
    (tmp_path / ".env").write_text("WRITEGATE_BOKAMERA_PAGE_SIZE=50\n")
    shown = run_cli("config", "show", cwd=tmp_path, WRITEGATE_IKONOMIKAL_MAX_ROWS="40")
    assert shown.returncode == 0, shown.stderr
    assert "WRITEGATE_BOKAMERA_PAGE_SIZE=50\n" in shown.stdout
    assert "WRITEGATE_IKONOMIKAL_MAX_ROWS=40\n" in shown.stdout
    only = run_cli("config", "show", cwd=tmp_path, WRITEGATE_MODULES="jef_one")
    assert "WRITEGATE_IKONOMIKAL_" not in only.stdout
    bad = run_cli("config", "show", cwd=tmp_path, WRITEGATE_IKONOMIKAL_MAX_ROWS="0")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "WRITEGATE_IKONOMIKAL_MAX_ROWS='0'" in one_line(bad.stderr)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("jef_one,nope.mod", "cannot load 'nope.mod': No module named 'nope'"),
        ("writegate.settings", "'writegate.settings' is no writegate module (no create)"),
    ],
)
def test_regression_a_module_that_does_not_load_was_a_traceback(
    tmp_path: Path, value: str, why: str
) -> None:
    """WRITEGATE_MODULES naming an import path that does not load, or is no module: serve,
    worker and migrate say so in one line, exit 2 (a 50-line traceback, exit 1)."""
    db = f"sqlite:///{tmp_path}/db.db"
    for command in (["migrate"], ["worker"], ["serve", "--port", "1"]):
        out = run_cli(*command, cwd=tmp_path, WRITEGATE_DATABASE_URL=db, WRITEGATE_MODULES=value)
        assert out.returncode == 2, (command, out.stderr)
        assert one_line(out.stderr) == f"writegate: bad setting WRITEGATE_MODULES: {why}"
