"""A loopback load generator (asyncio + httpx) shared by the load test and `make soak`.

Each API module has a scenario: `setup` prepares what its writes need, `step` sends one
request (mostly writes, some confirmation reads) and remembers what was accepted, and
`verify` checks the database afterwards: every accepted write is there exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from writegate.core.db import Database
from writegate.core.jobs import ACTIVE, JobRow, Status
from writegate.core.services import Services


class Scenario(Protocol):
    """One API's share of the load."""

    module: str

    async def setup(self, c: httpx.AsyncClient, services: Services) -> None:
        """Prepare what the writes need (entities, principals, sessions...)."""

    async def step(self, c: httpx.AsyncClient, i: int) -> httpx.Response:
        """Send one request; `i` is unique across the whole run."""

    def verify(self, db: Database, exact: bool = True) -> list[str]:
        """Problems found in the database after the run (empty when all is well).

        exact: what is stored is exactly what was accepted. Otherwise (the server was
        killed, some answers never arrived): accepted <= stored <= attempted.
        """

    def close(self) -> None:
        """Release what setup started."""


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


def compare(
    name: str, stored: set[Any], accepted: set[Any], attempted: set[Any], exact: bool
) -> list[str]:
    """Problems with stored versus accepted (and, when not exact, attempted) writes."""
    if exact and stored != accepted:
        return [f"{name}: {len(stored)} stored for {len(accepted)} accepted"]
    problems = []
    if accepted - stored:
        problems.append(f"{name}: {len(accepted - stored)} accepted writes lost")
    if stored - attempted:
        problems.append(f"{name}: {len(stored - attempted)} writes nobody sent")
    return problems


@dataclass
class JefOneScenario:
    """Employee upserts over a few entities (each a 202 + job), plus job GETs."""

    module: str = "jef_one"
    entities: list[str] = field(default_factory=lambda: [f"{9000 + n}" for n in range(10)])
    accepted: dict[tuple[str, str], str] = field(default_factory=dict)
    attempted: set[tuple[str, str]] = field(default_factory=set)

    async def setup(self, c: httpx.AsyncClient, services: Services) -> None:
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
        self.attempted.add((entity, employee))
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

    def verify(self, db: Database, exact: bool = True) -> list[str]:
        """Every accepted upsert has one succeeded job and one employee row."""
        from writegate.modules.jef_one.models import Employee

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
        problems = compare("jef_one", set(rows), set(self.accepted), self.attempted, exact)
        accepted_jobs = set(self.accepted.values())
        if (set(jobs) != accepted_jobs) if exact else not accepted_jobs <= set(jobs):
            problems.append(f"jef_one: {len(jobs)} jobs for {len(self.accepted)} accepted")
        if len(jobs) != len(rows):
            problems.append(f"jef_one: {len(jobs)} jobs but {len(rows)} employee rows")
        bad = [j for j, st in jobs.items() if st != Status.SUCCEEDED.value]
        if bad:
            problems.append(f"jef_one: {len(bad)} jobs not succeeded")
        return problems

    def close(self) -> None:
        """Nothing to release."""


def _key(services: Services, tenant: str, roles: list[str], **kw: Any) -> str:
    kw.setdefault("name", uuid.uuid4().hex)
    with services.db.write() as s:
        _, key = services.auth.create(s, tenant=tenant, roles=roles, **kw)
    return str(key)


@dataclass
class AbsScenario:
    """Package creates (synchronous putDb), updates of created packages, and reads."""

    module: str = "abs"
    code: str = field(default_factory=lambda: f"ENLOAD{uuid.uuid4().hex[:8].upper()}")
    headers: dict[str, str] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    attempted: set[str] = field(default_factory=set)
    updates: int = 0

    async def setup(self, c: httpx.AsyncClient, services: Services) -> None:
        """Register a client code and a principal of that tenant."""
        from writegate.modules.abs import service

        assert service.register_client(services, self.code, name="load")
        self.headers = {"x-api-key": _key(services, self.code, ["abs:write"])}

    async def step(self, c: httpx.AsyncClient, i: int) -> httpx.Response:
        """Two creates, one update, one read out of four."""
        marker = f"S{i}"
        body: dict[str, Any] = {"client_code": self.code, "processing_status": marker}
        method = "putDb"
        if i % 4 in (2, 3) and self.created:
            pid = random.choice(list(self.created.values()))
            method = "putDb" if i % 4 == 2 else "get"
            # updates change processing_step only: processing_status stays the create marker
            body = {"client_code": self.code, "id": pid}
            if method == "putDb":
                body["processing_step"] = f"U{i}"
        else:
            self.attempted.add(marker)
        r = await c.post(f"/model/package/{method}", json=body, headers=self.headers)
        data = r.json()
        if data.get("status") != "ok":
            raise AssertionError(f"abs {method} refused: {r.text[:200]}")
        if method == "putDb" and "id" not in body:
            self.created[marker] = int(data["data"]["id"])
        elif method == "putDb":
            self.updates += 1
        return r

    def verify(self, db: Database, exact: bool = True) -> list[str]:
        """Every created package is there once, with its id; versions are unique."""
        from writegate.modules.abs.models import AbsPackage

        with db.read() as s:
            rows = s.execute(
                select(AbsPackage.id, AbsPackage.version, AbsPackage.processing_status).where(
                    AbsPackage.client_code == self.code
                )
            ).all()
        stored = {r.processing_status: r.id for r in rows}
        problems = compare("abs", set(stored), set(self.created), self.attempted, exact)
        if len(stored) != len(rows):
            problems.append("abs: one create stored twice")
        if any(stored.get(m) != pid for m, pid in self.created.items()):
            problems.append("abs: an accepted package has another id than answered")
        if len({r.version for r in rows}) != len(rows):
            problems.append("abs: duplicate versions")
        return problems

    def close(self) -> None:
        """Nothing to release."""


IKO = "/bcss_wbcl_wa_"


@dataclass
class IkonomikalScenario:
    """Token + SS07 save with an auto code, over a pool of logged-in users."""

    module: str = "ikonomikal"
    sessions: list[dict[str, Any]] = field(default_factory=list)
    subscribers: set[str] = field(default_factory=set)
    saved: dict[tuple[str, str], str] = field(default_factory=dict)
    attempted: set[tuple[str, str]] = field(default_factory=set)

    async def setup(self, c: httpx.AsyncClient, services: Services) -> None:
        """Provision 20 users on 5 subscribers and log each in."""
        password = "load-" + uuid.uuid4().hex
        subscribers = [f"9{uuid.uuid4().hex[:8]}" for _ in range(5)]
        self.subscribers.update(subscribers)
        for n in range(20):
            email = f"load{uuid.uuid4().hex[:10]}@example.com"
            _key(
                services,
                subscribers[n % 5],
                ["ikonomikal", "ikonomikal:ss07"],
                name=email,
                password=password,
                attrs={"user_code": "LOAD", "group": "G"},
            )
            login = (
                await c.post(
                    f"{IKO}sc/api/O1_getSCSessWBLogVer",
                    json={"userID": email, "userPW": password},
                )
            ).json()
            if login["rspPrc"]["rspID"] != 0:
                raise AssertionError(f"login failed: {login}")
            self.sessions.append({k: login[k] for k in ("subsID", "intGID", "userID", "sessID")})

    async def step(self, c: httpx.AsyncClient, i: int) -> httpx.Response:
        """One NEW token, then one save of a blank code (auto code)."""
        session = self.sessions[i % len(self.sessions)]
        token = {"pgProcTkn": {"procID": 1, "prgInf": {"pPRGM": "SS07"}}, **session}
        r = await c.post(f"{IKO}sc/api/O1_getSCPrgPrcCheckTkn", json=token)
        if r.json()["rspPrc"]["rspID"] != 0:
            raise AssertionError(f"token refused: {r.text[:200]}")
        marker = (session["subsID"], f"Dept {i}")
        body = {
            "prgInf": {"pPRGM": "SS07"},
            "saveData": {"f001": "", "f002": marker[1]},
            "cmdStat": 0,
            **session,
        }
        self.attempted.add(marker)
        r = await c.post(f"{IKO}ss/api/ss_02_ss07_sav", json=body)
        data = r.json()
        if data["rspPrc"]["rspID"] != 0:
            raise AssertionError(f"save refused: {r.text[:200]}")
        self.saved[marker] = data["parCode"][0]
        return r

    def verify(self, db: Database, exact: bool = True) -> list[str]:
        """Every saved record is stored once under its subscriber, with the code answered."""
        from writegate.modules.ikonomikal.models import SS07Row

        with db.read() as s:
            rows = s.execute(
                select(SS07Row.subs_id, SS07Row.f002, SS07Row.code).where(
                    SS07Row.subs_id.in_(self.subscribers)
                )
            ).all()
        stored = {(r.subs_id, r.f002): r.code for r in rows}
        problems = compare("ikonomikal", set(stored), set(self.saved), self.attempted, exact)
        if len(stored) != len(rows):
            problems.append("ikonomikal: one save stored twice")
        if any(stored.get(m) != code for m, code in self.saved.items()):
            problems.append("ikonomikal: a record has another code than answered")
        return problems

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class BokaMeraScenario:
    """Syncs of 60 Vaka users into 20 companies (one at a time each), plus status GETs."""

    module: str = "bokamera"
    users: int = 60
    companies: list[dict[str, str]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    sim: Any = None

    async def setup(self, c: httpx.AsyncClient, services: Services) -> None:
        """Start a Vaka simulator and give every company settings pointing at it."""
        from writegate.modules.bokamera.simulator import RunningSimulator, build_state

        self.sim = RunningSimulator(build_state(self.users))
        for _ in range(20):
            company = str(uuid.uuid4())
            key = _key(services, company, ["bookingsupplier-administrator-write"])
            headers = {"x-api-key": key}
            settings = {"ApiEndpoint": self.sim.url, "Username": "vaka", "Password": "vaka"}
            r = await c.post("/codelock/axema/settings", json=settings, headers=headers)
            assert r.status_code == 200, r.text
            self.companies.append({"id": company, **headers})

    async def step(self, c: httpx.AsyncClient, i: int) -> httpx.Response:
        """Start a sync (200, or 409 while one runs), or read one's status."""
        company = self.companies[i % len(self.companies)]
        headers = {"x-api-key": company["x-api-key"]}
        if i % 3 == 0 and self.accepted:
            sync_id = random.choice(self.accepted)
            r = await c.get("/codelock/axema/usersync", headers=headers, params={"Take": 5})
            if r.status_code != 200:
                raise AssertionError(f"sync list refused: {r.text[:200]} ({sync_id})")
            return r
        r = await c.post("/codelock/axema/usersync", json={}, headers=headers)
        if r.status_code == 200:
            self.accepted.append(r.json()["Id"])
        elif r.status_code != 409:
            raise AssertionError(f"sync refused: {r.status_code} {r.text[:200]}")
        return r

    def verify(self, db: Database, exact: bool = True) -> list[str]:
        """Every accepted sync completed; each company has each Vaka user exactly once."""
        from writegate.modules.bokamera.models import CustomerRow, UserSyncRow

        ids = [c["id"] for c in self.companies]
        with db.read() as s:
            syncs = dict(
                s.execute(
                    select(UserSyncRow.id, JobRow.status)
                    .join(JobRow, JobRow.id == UserSyncRow.id)
                    .where(UserSyncRow.company_id.in_(ids))
                ).all()
            )
            per_company = dict(
                s.execute(
                    select(CustomerRow.company_id, func.count())
                    .where(CustomerRow.company_id.in_(ids))
                    .group_by(CustomerRow.company_id)
                ).all()
            )
        problems = []
        accepted = set(self.accepted)
        if (set(syncs) != accepted) if exact else not accepted <= set(syncs):
            problems.append(f"bokamera: {len(syncs)} syncs for {len(self.accepted)} accepted")
        failed = [k for k, v in syncs.items() if v != Status.SUCCEEDED.value]
        if failed:
            problems.append(f"bokamera: {len(failed)} syncs did not complete")
        wrong = {k: v for k, v in per_company.items() if v != self.users}
        if wrong:
            problems.append(f"bokamera: customer counts {wrong}")
        if self.accepted and not per_company:
            problems.append("bokamera: no customers at all")
        return problems

    def close(self) -> None:
        """Stop the simulator."""
        if self.sim is not None:
            self.sim.stop()


#: module name -> scenario factory
SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "jef_one": JefOneScenario,
    "ikonomikal": IkonomikalScenario,
    "bokamera": BokaMeraScenario,
    "abs": AbsScenario,
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
    #: the server's own p50 and p99 (upper bounds of its histogram buckets), in ms
    server_ms: dict[int, float] = field(default_factory=dict)

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
        server = ", ".join(f"p{p} <= {ms:g} ms" for p, ms in sorted(self.server_ms.items()))
        return (
            f"{self.requests} requests in {self.seconds:.1f}s from {self.clients} clients: "
            f"{self.throughput:.0f} req/s, p50 {self.percentile(50):.1f} ms, "
            f"p99 {self.percentile(99):.1f} ms (in the server: {server or 'not known'}); "
            f"statuses {dict(sorted(self.statuses.items()))}; "
            f"per API {dict(self.per_module)}; {mem}"
        )


async def run_load(
    url: str,
    scenarios: list[Scenario],
    services: Services,
    *,
    clients: int,
    seconds: float,
    rss: Callable[[], int] | None = None,
    pause_on_error: float = 0.0,
    fault: tuple[float, Callable[[], None]] | None = None,
) -> Figures:
    """Run `clients` concurrent clients for `seconds` over the scenarios; return figures."""
    # One connection pool per ten clients: a single httpx pool shared by hundreds of tasks
    # spends its time on pool bookkeeping and would measure the client, not the server.
    pools = [httpx.AsyncClient(base_url=url, timeout=120) for _ in range(max(1, clients // 10))]
    try:
        for s in scenarios:
            await s.setup(pools[0], services)
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
            c = pools[k % len(pools)]
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
                    await asyncio.sleep(pause_on_error)
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[str(r.status_code)] += 1
                per_module[scenario.module] += 1
                if r.status_code >= 500:
                    errors.append(f"{scenario.module}: {r.status_code} {r.text[:300]}")

        async def sample() -> None:
            while time.monotonic() < end:
                if rss is not None:
                    with contextlib.suppress(OSError, AssertionError):  # mid-restart
                        rss_samples.append(rss())
                await asyncio.sleep(0.5)

        async def inject() -> None:
            if fault is not None:
                await asyncio.sleep(fault[0])
                await asyncio.to_thread(fault[1])

        await asyncio.gather(inject(), sample(), *(client(k) for k in range(clients)))
        elapsed = time.monotonic() - start
        server_ms = await server_percentiles(pools[0])
    finally:
        for c in pools:
            await c.aclose()
    return Figures(
        elapsed, clients, latencies, statuses, per_module, rss_samples, errors, server_ms
    )


async def server_percentiles(c: httpx.AsyncClient) -> dict[int, float]:
    """p50 and p99 of the server's request durations, from its /metrics histogram.

    The clients' own figures include the time a request waits in this (CPU-bound) client
    process; the server's say how long it held the request.
    """
    with contextlib.suppress(httpx.HTTPError):
        text = (await c.get("/metrics")).text
        buckets: Counter[float] = Counter()
        for family in text_string_to_metric_families(text):
            if family.name != "writegate_http_request_duration_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets[float(sample.labels["le"])] += sample.value
        total = buckets[float("inf")]
        if total:
            return {
                p: 1000 * min(le for le, n in buckets.items() if n >= total * p / 100)
                for p in (50, 99)
            }
    return {}


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


def load_serve(
    url: str,
    modules: list[str],
    *,
    clients: int,
    seconds: float,
    log: str,
    kill_after: float | None = None,
) -> tuple[Figures, list[str]]:
    """Start `writegate serve` on url, load it, drain its jobs; return figures and problems.

    With kill_after, the server is SIGKILLed that many seconds into the load and started
    again at once; clients keep going, and the check becomes accepted <= stored <= sent.
    """
    from tests.system.faults import serve_env, serve_process
    from writegate.settings import Settings

    # The default lease, as users run it: the fast tests' 2 s lease is for the lease fault
    # tests; under hundreds of clients on two busy cores a short job can wait longer than
    # that in the group commit, and be retried until its attempts run out.
    env = serve_env(url, modules, worker_concurrency=8, db_pool_size=20, job_lease_seconds=30)
    services = Services.build(Settings(database_url=url, modules=modules))
    scenarios = [SCENARIOS[m]() for m in modules]
    try:
        with serve_process(env, log) as srv:

            def kill_and_restart() -> None:
                srv.kill()
                srv.start()

            figures = asyncio.run(
                run_load(
                    srv.url,
                    scenarios,
                    services,
                    clients=clients,
                    seconds=seconds,
                    rss=srv.rss_kib,
                    pause_on_error=0.05 if kill_after is not None else 0.0,
                    fault=None if kill_after is None else (kill_after, kill_and_restart),
                )
            )
            drain(services.db)
        exact = kill_after is None
        problems = [p for s in scenarios for p in s.verify(services.db, exact)]
    finally:
        for s in scenarios:
            s.close()
        services.close()
    return figures, problems


def rss_growth_ok(rss: list[int]) -> bool:
    """Memory is flat: after the warm-up third, RSS stays within 30% + 32 MiB of its peak."""
    warm = max(rss[: max(1, len(rss) // 3)])
    return max(rss[len(rss) // 3 :]) < warm * 1.3 + 32 * 1024
