"""Every `writegate` command the deploy/ files run is a real command with valid options."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from tests.system.clirun import run_cli
from writegate.commands.lazy import COMMANDS, resolve
from writegate.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _systemd() -> list[tuple[str, list[str]]]:
    found = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                argv = shlex.split(line.removeprefix("ExecStart=").replace("%i", "8001"))
                assert argv[0].endswith("/writegate"), unit.name
                found.append((unit.name, argv[1:]))
    return found


def _dockerfile() -> list[tuple[str, list[str]]]:
    entry: list[str] = []
    cmd: list[str] = []
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("ENTRYPOINT "):
            entry = json.loads(line.removeprefix("ENTRYPOINT "))
        elif line.startswith("CMD "):
            cmd = json.loads(line.removeprefix("CMD "))
    assert entry == ["writegate"]
    return [("Dockerfile", cmd)]


def _compose() -> list[tuple[str, list[str]]]:
    spec = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    found = []
    for name, service in spec["services"].items():
        if service.get("image") == "writegate:latest":
            command = service["command"]
            assert isinstance(command, list), name
            found.append((f"compose {name}", command))
    return found


COMMANDS_RUN = _systemd() + _dockerfile() + _compose()


def test_every_deploy_file_runs_writegate() -> None:
    """The systemd units, the Dockerfile and compose all start writegate processes."""
    where = {w.split()[0] for w, _ in COMMANDS_RUN}
    assert where >= {"writegate-serve@.service", "writegate-worker@.service", "Dockerfile"}
    assert {"compose migrate", "compose serve", "compose worker"} <= {w for w, _ in COMMANDS_RUN}


@pytest.mark.parametrize(("where", "argv"), COMMANDS_RUN, ids=[w for w, _ in COMMANDS_RUN])
def test_deploy_command_parses(where: str, argv: list[str], tmp_path: Path) -> None:
    """Each command's options exist and their values convert (parsed, not run)."""
    name, *args = argv
    assert name in COMMANDS, f"{where}: no such command {name!r}"
    command = resolve(name, COMMANDS[name])
    command.make_context(f"writegate {name}", list(args))  # raises on a bad option or value
    out = run_cli(*argv, "--help", cwd=tmp_path)
    assert out.returncode == 0, f"{where}: {out.stderr}"


def test_env_example_is_valid(tmp_path: Path) -> None:
    """deploy/writegate.env.example holds only settings writegate accepts."""
    values = {}
    for line in (DEPLOY / "writegate.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    out = run_cli("config", "show", cwd=tmp_path, **values)
    assert out.returncode == 0, out.stderr
    shown = dict(line.split("=", 1) for line in out.stdout.splitlines())
    for key, value in values.items():
        if key != "WRITEGATE_DATABASE_URL":
            assert shown[key] == value, key


def test_compose_serve_trusts_the_proxy_it_alone_is_reached_by() -> None:
    """compose's API processes trust X-Forwarded-Proto/-For from any peer (the proxy runs in
    another container): safe only while their port is not published. Without it the console's
    cookie lost Secure and every client shared the proxy's address in the login limits."""
    serve = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["serve"]
    assert serve["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    assert "ports" not in serve
    assert serve["expose"] == ["8000"]


def test_compose_workers_are_scraped_and_stopped_gracefully() -> None:
    """compose's workers serve /metrics on the compose network and Prometheus scrapes them
    (a job's counters are the worker's: the dashboards' job panels stayed empty), and Docker
    waits past the workers' grace before it kills them (its default 10 s is under the 30 s
    grace: their running jobs then waited for their leases instead of being handed back)."""
    spec = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    worker = spec["services"]["worker"]
    port = worker["command"][worker["command"].index("--metrics-port") + 1]
    assert worker["environment"]["WRITEGATE_HOST"] == "0.0.0.0"
    assert worker["expose"] == [port]
    grace = Settings.model_fields["shutdown_grace_seconds"].default
    assert int(worker["stop_grace_period"].removesuffix("s")) > grace
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    targets = {(sd["names"][0], sd["port"]) for job in scrape for sd in job["dns_sd_configs"]}
    assert targets == {("serve", 8000), ("worker", int(port))}
