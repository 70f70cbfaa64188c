"""Helpers for the observability tests: scraping /metrics, reading JSON log lines."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import wait_for


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics page: (name, labels) -> value."""
    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def has(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> bool:
    """Whether a sample `name` with these labels exists."""
    want = set(labels.items())
    return any(n == name and want <= ls for (n, ls) in samples)


def entity_number() -> str:
    """A random 4-digit jef-one entity number."""
    return f"{random.randrange(2000, 9999)}"


def accept_entity(client: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST a jef-one entity upsert; the 202 response."""
    number = entity_number()
    r = client.post(
        "/one-entities-post-one",
        json={"entity_number": number, "entity_name": f"Entity {number}", "is_active": True},
        headers=headers or {},
    )
    assert r.status_code == 202, r.text
    return r


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll jef-one's job GET until the job is final."""

    def done() -> dict[str, Any] | None:
        view = client.get("/jef-one-get-job-by-job-id", params={"job_id": job_id}).json()
        return view if view["job_status"] in ("succeeded", "failed", "cancelled") else None

    return dict(wait_for(done, timeout))


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log file, each parsed as JSON (a line that is not JSON fails)."""
    lines = []
    for raw in path.read_text().splitlines():
        if raw.strip():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError as exc:
                raise AssertionError(f"log line is not JSON: {raw!r}") from exc
    return lines
