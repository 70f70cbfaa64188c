"""deploy/alerts.yml: valid for Prometheus, each alert fires when it should (promtool's unit
tests), and every series it reads is one a live writegate exposes, with those labels."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Server, fresh_database, start_server
from tests.system.obskit import accept_entity, wait_job

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"][0]["rules"]
#: the samples each metric type exposes, by suffix of the family's name
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        raise RuntimeError(
            "promtool is missing: `apt-get install -y --no-install-recommends prometheus`"
            " (see README)"
        )
    return subprocess.run([tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_prometheus_config_and_its_rules_are_valid() -> None:
    """prometheus.yml loads alerts.yml, and Prometheus's own checker accepts both."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    out = _promtool("check", "config", "deploy/prometheus.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in out.stdout


def test_each_alert_fires_when_it_should() -> None:
    """tests/system/alerts_test.yml: for each alert, the series that raise it (after its
    `for:`), and the ones beside them that must not."""
    out = _promtool("test", "rules", "tests/system/alerts_test.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    tested = set(
        re.findall(r"alertname: (\w+)", (ROOT / "tests/system/alerts_test.yml").read_text())
    )
    assert tested == {rule["alert"] for rule in RULES}


def test_target_down_watches_every_scrape_job() -> None:
    """The `up` alert's job pattern covers each scrape job of prometheus.yml."""
    (rule,) = [r for r in RULES if r["alert"] == "WritegateTargetDown"]
    pattern = re.search(r'job=~"([^"]+)"', rule["expr"])
    assert pattern is not None
    jobs = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    assert jobs
    assert all(re.fullmatch(pattern.group(1), job["job_name"]) for job in jobs)


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str] | None]:
    """What a live `serve` (embedded worker) exposes after a request and a job: each sample
    name, with its label names where it has samples (None: declared, none yet)."""
    with fresh_database(str(tmp_path_factory.mktemp("alerts"))) as url:
        server: Server = start_server(url, modules=["jef_one"])
        try:
            with server.client() as c:
                job_id = accept_entity(c).json()["job_id"]
                wait_job(c, job_id)
            text = httpx.get(f"{server.url}/metrics", timeout=30).text
        finally:
            server.stop()
    names: dict[str, set[str] | None] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ()):
            names[family.name + suffix] = None
        for sample in family.samples:
            names[sample.name] = (names.get(sample.name) or set()) | set(sample.labels)
    return names


@pytest.mark.parametrize("rule", RULES, ids=[r["alert"] for r in RULES])
def test_each_alert_reads_series_writegate_exposes(
    rule: dict[str, str], exposed: dict[str, set[str] | None]
) -> None:
    """A renamed metric or label would leave its alert silent for good: every writegate
    series an alert reads, and every label it matches or groups by, is exposed."""
    expr = rule["expr"]
    grouped = {g.strip() for by in re.findall(r"by \(([^)]*)\)", expr) for g in by.split(",")}
    for name, matchers in re.findall(r"(writegate_\w+)(\{[^}]*\})?", expr):
        assert name in exposed, f"{rule['alert']}: {name} is not exposed"
        labels = exposed[name]
        if labels is None:
            continue  # declared, but nothing counted yet (a failure, a lost lease)
        matched = set(re.findall(r"(\w+)\s*[=!~]+", matchers))
        assert (
            matched | (grouped - {"le"} if not name.endswith("_bucket") else grouped) <= labels
        ), f"{rule['alert']}: {name} has only {sorted(labels)}"
