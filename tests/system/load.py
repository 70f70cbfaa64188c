"""A loopback load generator (asyncio + httpx) shared by the load test and `make soak`.

Each API module has a scenario: `setup` prepares what its writes need, `step` sends one
request (mostly writes, some confirmation reads) and remembers what was accepted, and
`verify` checks the database afterwards: every accepted write is there exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from sqlalchemy import func, select

from writegate.core.db import Database
from writegate.core.jobs import ACTIVE, JobRow, Status


class Scenario(Protocol):
    """One API's share of the load."""

    module: str

    async def setup(self, c: httpx.AsyncClient) -> None:
        """Prepare what the writes need (entities, principals, sessions...)."""

    async def step(self, c: httpx.AsyncClient, i: int) -> httpx.Response:
        """Send one request; `i` is unique across the whole run."""

    def verify(self, db: Database) -> list[str]:
        """Problems found in the database after the run (empty when all is well)."""


async def wait_job(c: httpx.AsyncClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll jef-one's job GET until the job is final."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view: dict[str, Any] = (
            await c.get("/jef-one-get-job-by-job-id", params={"job_id": job_id})
        ).json()
        if view.get("job_status") in ("succeeded", "failed", "cancelled"):
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} not final within {timeout}s")


@dataclass
class JefOneScenario:
    """Employee upserts over a few entities (each a 202 + job), plus job GETs."""

    module: str = "jef_one"
    entities: list[str] = field(default_factory=lambda: [f"{9000 + n}" for n in range(10)])
    accepted: dict[tuple[str, str], str] = field(default_factory=dict)

    async def setup(self, c: httpx.AsyncClient) -> None:
        """Create the entities the employees belong to."""
        for number in self.entities:
            r = await c.post(
                "/one-entities-post-one",
                json={"entity_number": number, "entity_name": f"Load {number}"},
            )
            assert r.status_code == 202, r.text
            assert (await wait_job(c, r.json()["job_id"]))["job_status"] == "succeeded"

    async def step(self, c: httpx.AsyncClient, i: int) -> httpx.Response:
        """Three writes for every read."""
        if i % 4 == 0 and self.accepted:
            job_id = random.choice(list(self.accepted.values()))
            r = await c.get("/jef-one-get-job-by-job-id", params={"job_id": job_id})
            if r.status_code == 200 and r.json().get("is_found") is not True:
                raise AssertionError(f"accepted job {job_id} not found")
            return r
        entity = self.entities[i % len(self.entities)]
        employee = f"{i // len(self.entities):05d}"
        r = await c.post(
            "/one-employees-post-one",
            json={
                "entity_number": entity,
                "employee_number": employee,
                "employee_name": f"Worker {i}",
            },
        )
        if r.status_code == 202:
            self.accepted[(entity, employee)] = r.json()["job_id"]
        return r

    def verify(self, db: Database) -> list[str]:
        """Every accepted upsert has one succeeded job and one employee row."""
        from writegate.modules.jef_one.models import Employee

        problems = []
        with db.read() as s:
            jobs = dict(
                s.execute(
                    select(JobRow.id, JobRow.status).where(JobRow.kind == "jef_one.upsert_employee")
                ).all()
            )
            rows = set(
                s.execute(
                    select(Employee.entity_number, Employee.employee_number).where(
                        Employee.entity_number.in_(self.entities)
                    )
                ).all()
            )
        if set(jobs) != set(self.accepted.values()):
            problems.append(f"jef_one: {len(jobs)} jobs for {len(self.accepted)} accepted")
        bad = [j for j, st in jobs.items() if st != Status.SUCCEEDED.value]
        if bad:
            problems.append(f"jef_one: {len(bad)} jobs not succeeded")
        if rows != set(self.accepted):
            problems.append(f"jef_one: {len(rows)} employee rows for {len(self.accepted)}")
        return problems


#: module name -> scenario factory
SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "jef_one": JefOneScenario,
}


@dataclass
class Figures:
    """What a load run measured."""

    seconds: float
    clients: int
    latencies_ms: list[float]
    statuses: Counter[str]
    per_module: Counter[str]
    rss_kib: list[int]
    errors: list[str]

    @property
    def requests(self) -> int:
        """Requests answered."""
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency percentile in milliseconds."""
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(p) - 1]

    def summary(self) -> str:
        """One printable paragraph."""
        rss = self.rss_kib
        mem = f"RSS {rss[0] // 1024}->{max(rss) // 1024}->{rss[-1] // 1024} MiB" if rss else ""
        return (
            f"{self.requests} requests in {self.seconds:.1f}s from {self.clients} clients: "
            f"{self.throughput:.0f} req/s, p50 {self.percentile(50):.1f} ms, "
            f"p99 {self.percentile(99):.1f} ms; statuses {dict(sorted(self.statuses.items()))}; "
            f"per API {dict(self.per_module)}; {mem}"
        )


async def run_load(
    url: str,
    scenarios: list[Scenario],
    *,
    clients: int,
    seconds: float,
    rss: Callable[[], int] | None = None,
) -> Figures:
    """Run `clients` concurrent clients for `seconds` over the scenarios; return figures."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        for s in scenarios:
            await s.setup(c)
        counter = itertools.count()
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        per_module: Counter[str] = Counter()
        errors: list[str] = []
        rss_samples: list[int] = []
        start = time.monotonic()
        end = start + seconds

        async def client(k: int) -> None:
            scenario = scenarios[k % len(scenarios)]
            while time.monotonic() < end:
                t0 = time.perf_counter()
                try:
                    r = await scenario.step(c, next(counter))
                except (httpx.HTTPError, AssertionError) as exc:
                    errors.append(
                        f"{scenario.module}: {type(exc).__name__}: {exc!r} after"
                        f" {time.monotonic() - start:.1f}s, {time.perf_counter() - t0:.1f}s in"
                    )
                    statuses["error"] += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[str(r.status_code)] += 1
                per_module[scenario.module] += 1
                if r.status_code >= 500:
                    errors.append(f"{scenario.module}: {r.status_code} {r.text[:300]}")

        async def sample() -> None:
            while time.monotonic() < end:
                if rss is not None:
                    rss_samples.append(rss())
                await asyncio.sleep(0.5)

        await asyncio.gather(sample(), *(client(k) for k in range(clients)))
        elapsed = time.monotonic() - start
    return Figures(elapsed, clients, latencies, statuses, per_module, rss_samples, errors)


def drain(db: Database, timeout: float = 300) -> None:
    """Wait until no job is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        with db.read() as s:
            active = s.scalar(select(func.count()).where(JobRow.status.in_(ACTIVE)))
        if not active:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{active} jobs still active after {timeout}s")
        time.sleep(0.3)
