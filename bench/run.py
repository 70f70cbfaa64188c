"""The core sections of `python -m bench` (accept, drain, pickup, scaling, backlog), the
table they fill, and the helpers every bench module shares (databases, services, wrk).

Every figure is the median of --repeat runs; ratios are value / baseline from this run.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import delete, func, insert, select, text

from bench import marks, procs
from bench.noop_module import metadata as bench_metadata
from writegate.core.db import driver_fetch
from writegate.core.jobs import JobRow
from writegate.core.services import Services
from writegate.settings import Settings
from writegate.startup import load_modules, migrate

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_ADMIN.rsplit("/", 1)[0]
WG_PG = f"{PG_BASE}/writegate_bench_wg"
PEER_PG = f"{PG_BASE}/writegate_bench"
RESULTS = Path(__file__).resolve().parent / "results"
TMP = RESULTS / "tmp"
WG_SQLITE = f"sqlite:///{TMP}/writegate.db"
PG_PICKUP = "writegate PostgreSQL (worker process, NOTIFY)"
JEF_ONE_PATH = "/one-post-create-session-job"
EMBEDDED_PICKUP = "writegate embedded SQLite (incl. HTTP POST)"
BODY = (
    '{"entity_number": "1001", "employee_number": "00001", "session_id": "session-%s", '
    '"app_type": "mobile", "app_number": "001"}'
)


@dataclass
class Row:
    """One line of the table."""

    figure: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    goal: str
    runs: list[float]
    baseline_runs: list[float]
    #: runs[i] and baseline_runs[i] were measured in the same round, seconds apart
    paired: bool = False

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    def round_ratios(self) -> list[float]:
        """value / baseline of each round, for paired rows."""
        return [v / c for v, c in zip(self.runs, self.baseline_runs, strict=True)]


@dataclass
class Bench:
    """Options and collected rows."""

    repeat: int
    drain_repeat: int
    jobs: int
    duration: int
    connections: int
    workers: int
    rows: list[Row]
    notes: dict[str, Any]

    def add(
        self,
        figure: str,
        runs: list[float],
        unit: str,
        base: str,
        bruns: list[float],
        goal: str,
        *,
        paired: bool = False,
    ) -> None:
        row = Row(figure, med(runs), unit, base, med(bruns), goal, runs, bruns, paired)
        self.rows.append(row)
        print(
            f"  {figure}: {row.value:.4g} {unit} "
            f"(baseline {base}: {row.baseline:.4g}, ratio {row.ratio:.2f})",
            flush=True,
        )


def med(xs: list[float]) -> float:
    """Median, NaN for nothing."""
    return statistics.median(xs) if xs else float("nan")


def pct(xs: list[float], q: float) -> float:
    """The q-quantile (0..1) of xs."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


# -- set-up -----------------------------------------------------------------------------


def recreate_pg(name: str) -> None:
    """Drop and create a PostgreSQL database."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')


def writegate_services(url: str, modules: Sequence[str] = ("bench.noop_module",)) -> Services:
    """Migrated writegate services with the bench module, and its business table."""
    svc = Services.build(Settings(database_url=url, modules=list(modules)))
    load_modules(svc)
    migrate(svc)
    bench_metadata.create_all(svc.db.write_engine, checkfirst=True)
    return svc


def reset_writegate(svc: Services) -> None:
    """Empty the job and business tables, leaving no dead index entries behind."""
    with svc.db.write() as s:
        s.execute(delete(JobRow))
        s.execute(text("DELETE FROM bench_sessions"))
    # Without this, the next section's claims skip over the deleted rows' index entries
    # until autovacuum comes by (several ms per claim after a 100k-row section).
    settle(svc)


def fill_writegate(svc: Services, kind: str, n: int) -> None:
    """Queue n jobs with one bulk INSERT per 5,000."""
    now = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    for start in range(0, n, 5000):
        rows = [
            {
                "id": str(uuid.uuid4()),
                "kind": kind,
                "tenant": "bench",
                "payload": {
                    "session_id": f"s-{start + i}-{uuid.uuid4().hex[:8]}",
                    "entity_number": "1001",
                },
                "status": "queued",
                "attempts": 0,
                "max_attempts": 5,
                "run_after": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(min(5000, n - start))
        ]
        with svc.db.write() as s:
            s.execute(insert(JobRow), rows)


def peer_setup() -> None:
    """The peers' database (procrastinate schema + business table) and an empty Redis db."""
    recreate_pg("writegate_bench")
    from bench.peers.procrastinate_app import app

    with app.open():
        app.schema_manager.apply_schema()
    with psycopg.connect(PEER_PG, autocommit=True) as c:
        c.execute(
            "CREATE TABLE bench_peer_rows "
            "(session_id varchar(64) PRIMARY KEY, entity_number varchar(64))"
        )


def reset_peers() -> None:
    """Empty procrastinate's queue, the peers' business rows and Redis db 15."""
    with psycopg.connect(PEER_PG, autocommit=True) as c:
        c.execute("TRUNCATE procrastinate_jobs CASCADE")
        c.execute("TRUNCATE bench_peer_rows")
    subprocess.run(["redis-cli", "-n", "15", "FLUSHDB"], check=True, capture_output=True)


def peer_rows() -> int:
    with psycopg.connect(PEER_PG, autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM bench_peer_rows").fetchone()
    return int(row[0]) if row else 0


# -- 1. accept path -----------------------------------------------------------------------


LUA = """
local counter = 0
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
request = function()
  counter = counter + 1
  local body = '{"entity_number": "1001", "employee_number": "00001", "session_id": "s-RUN-'
    .. tostring(tid) .. '-' .. counter .. '", "app_type": "mobile", "app_number": "001"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


def wrk(url: str, seconds: float, connections: int) -> dict[str, float]:
    """Run wrk against url; requests/s, p50 and p99 in ms, and non-2xx count."""
    script = TMP / "post.lua"
    # A fresh prefix per wrk run: jef-one refuses a session_id whose job is still active.
    script.write_text(LUA.replace("RUN", uuid.uuid4().hex[:12]))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def lat(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p50": lat("50"),
        "p99": lat("99"),
        "non2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def accept(b: Bench, wg_sqlite: Services, wg_pg: Services) -> None:
    print(f"[accept] wrk, {b.connections} connections, {b.duration}s runs", flush=True)
    path = "/bench/one-post-create-session-job"
    port = procs.free_port()
    # The ceiling: jef-one's request model and response with writegate's middleware, and
    # nothing else (no database, no job).
    ceiling = procs.spawn(
        [
            "-m",
            "uvicorn",
            "bench.api_ceiling:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    )
    urls = {"ceiling": f"http://127.0.0.1:{port}{JEF_ONE_PATH}"}
    servers = [ceiling]
    for db, svc, url in (("sqlite", wg_sqlite, WG_SQLITE), ("pg", wg_pg, WG_PG)):
        reset_writegate(svc)
        port = procs.free_port()
        # The real jef-one module next to the bench module: its endpoint is the one that counts.
        servers.append(
            procs.writegate_serve(
                url,
                port,
                worker=False,
                WRITEGATE_MODULES=json.dumps(["jef_one", "bench.noop_module"]),
            )
        )
        base = f"http://127.0.0.1:{port}"
        urls[f"{db} jef-one"] = f"{base}{JEF_ONE_PATH}"
        urls[f"{db} group"] = f"{base}{path}"
        urls[f"{db} single"] = f"{base}/bench/single{path[6:]}"
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    with procs.running(*servers):
        for url in urls.values():
            procs.wait_http(url.rsplit("/", 1)[0] + "/docs")
            wrk(url, 1, b.connections)  # warm-up
        # Rounds of every target in turn: this VM's speed drifts by 30 % over minutes, and a
        # ratio means most when its two sides ran seconds apart, not a section apart.
        for _ in range(b.repeat):
            for name, url in urls.items():
                runs[name].append(wrk(url, b.duration, b.connections))
        ceiling_rss = procs.peak_rss_mb(ceiling)
        serve_rss = [procs.peak_rss_mb(server) for server in servers[1:]]
    for db, svc in (("sqlite", wg_sqlite), ("pg", wg_pg)):
        with svc.db.read() as s:
            b.notes[f"accept_{db}_jobs_committed"] = s.scalar(
                select(func.count()).select_from(JobRow)
            )
    targets = {name: {k: [r[k] for r in rs] for k in rs[0]} for name, rs in runs.items()}
    errors = {n: rs for n, rs in runs.items() if any(r["non2xx"] or r["socket_errors"] for r in rs)}
    if errors:
        b.notes["accept_errors"] = errors
    c = targets["ceiling"]
    for db, label in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
        g, one, jef = targets[f"{db} group"], targets[f"{db} single"], targets[f"{db} jef-one"]
        b.add(
            f"accept req/s, {label}, jef-one POST (real module)",
            jef["rps"],
            "req/s",
            "FastAPI ceiling (model, middleware)",
            c["rps"],
            ">= 0.85",
            paired=True,
        )
        b.add(
            f"accept p50, {label}, jef-one POST (real module)",
            jef["p50"],
            "ms",
            "ceiling p50",
            c["p50"],
            "(lower is better)",
        )
        b.add(
            f"accept p99, {label}, jef-one POST (real module)",
            jef["p99"],
            "ms",
            "ceiling p99",
            c["p99"],
            "(lower is better)",
        )
        b.add(
            f"accept req/s, {label}, bench module, group commit",
            g["rps"],
            "req/s",
            "FastAPI ceiling (model, middleware)",
            c["rps"],
            ">= 0.85",
            paired=True,
        )
        b.add(
            f"accept req/s, {label}, bench module, one commit per request",
            one["rps"],
            "req/s",
            "FastAPI ceiling (model, middleware)",
            c["rps"],
            "(for comparison)",
            paired=True,
        )
        b.add(
            f"accept p50, {label}, bench module, group commit",
            g["p50"],
            "ms",
            "ceiling p50",
            c["p50"],
            "(lower is better)",
        )
        b.add(
            f"accept p99, {label}, bench module, group commit",
            g["p99"],
            "ms",
            "ceiling p99",
            c["p99"],
            "(lower is better)",
        )
    b.notes["ceiling_peak_rss_mb"] = ceiling_rss
    b.add(
        "peak RSS, writegate serve",
        [max(serve_rss)],
        "MB",
        "ceiling uvicorn",
        [ceiling_rss],
        "(lower is better)",
    )


# -- 2./4. drain ---------------------------------------------------------------------------


def wait_marks(path: str, n: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while marks.count(path) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {marks.count(path)} of {n} jobs ran within {timeout}s")
        time.sleep(0.02)


def rate(path: str, n: int) -> float:
    """Jobs per second between the first and the last handler run."""
    ts = marks.read(path)
    return n / max(1e-6, max(ts) - min(ts))


def drain_writegate(
    b: Bench, svc: Services, url: str, kind: str, workers: int, rss: list[float]
) -> float:
    reset_writegate(svc)
    fill_writegate(svc, kind, b.jobs)
    path = str(TMP / f"marks-{uuid.uuid4().hex[:8]}")
    ps = [procs.writegate_worker(url, BENCH_MARKS=path) for _ in range(workers)]
    with procs.running(*ps):
        wait_marks(path, b.jobs)
        # Not timed: the last batch's COMMIT, then every job must be succeeded.
        deadline = time.monotonic() + 60
        while True:
            with svc.db.read() as s:
                done = s.scalar(
                    select(func.count()).select_from(JobRow).where(JobRow.status == "succeeded")
                )
            if done == b.jobs or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        rss.append(max(procs.peak_rss_mb(p) for p in ps))
    if done != b.jobs:
        raise RuntimeError(f"writegate: {done} of {b.jobs} jobs succeeded")
    r = rate(path, b.jobs)
    os.unlink(path)
    return r


def drain_celery(b: Bench, kind: str, workers: int, rss: list[float]) -> float:
    from bench.peers.celery_app import app, noop, row

    reset_peers()
    with app.producer_or_acquire() as producer:
        for i in range(b.jobs):
            if kind == "noop":
                noop.apply_async(producer=producer)
            else:
                row.apply_async(args=(f"s-{i}", "1001"), producer=producer)
    path = str(TMP / f"marks-{uuid.uuid4().hex[:8]}")
    p = procs.spawn(
        [
            "-m",
            "celery",
            "-A",
            "bench.peers.celery_app",
            "worker",
            "--pool",
            "prefork",
            "-c",
            str(workers),
            "--loglevel",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        BENCH_MARKS=path,
    )
    with procs.running(p):
        wait_marks(path, b.jobs)
        rss.append(procs.peak_rss_mb(p, children=True))
        if kind == "row":
            deadline = time.monotonic() + 30
            while peer_rows() < b.jobs and time.monotonic() < deadline:
                time.sleep(0.05)
    r = rate(path, b.jobs)
    os.unlink(path)
    return r


def drain_procrastinate(b: Bench, kind: str, workers: int, rss: list[float]) -> float:
    from bench.peers.procrastinate_app import app, noop, row

    reset_peers()
    with app.open():
        for start in range(0, b.jobs, 1000):
            n = min(1000, b.jobs - start)
            if kind == "noop":
                noop.batch_defer(*({} for _ in range(n)))
            else:
                row.batch_defer(
                    *({"session_id": f"s-{start + i}", "entity_number": "1001"} for i in range(n))
                )
    path = str(TMP / f"marks-{uuid.uuid4().hex[:8]}")
    ps = [
        procs.spawn(
            [
                "-m",
                "procrastinate",
                "--app",
                "bench.peers.procrastinate_app.app",
                "worker",
                "-c",
                "4",
            ],
            BENCH_MARKS=path,
        )
        for _ in range(workers)
    ]
    with procs.running(*ps):
        wait_marks(path, b.jobs)
        rss.append(max(procs.peak_rss_mb(p) for p in ps))
    r = rate(path, b.jobs)
    os.unlink(path)
    return r


def drain(b: Bench, wg_sqlite: Services, wg_pg: Services) -> None:
    """Drain rates: short kinds (run in the group commit, as jef-one's are) and threaded kinds."""
    n = b.workers
    reps = range(b.drain_repeat)
    print(f"[drain] {b.jobs} jobs, {n} worker processes", flush=True)
    wg_rss: list[float] = []
    peer_rss: dict[str, list[float]] = {"celery": [], "procrastinate": []}
    for kind, wg_kind, label in (("noop", "bench.noop", "no-op"), ("row", "bench.row", "one-row")):
        pg = [drain_writegate(b, wg_pg, WG_PG, wg_kind, n, wg_rss) for _ in reps]
        lite = [drain_writegate(b, wg_sqlite, WG_SQLITE, wg_kind, n, wg_rss) for _ in reps]
        threaded = f"{wg_kind}_threaded"
        pg_t = [drain_writegate(b, wg_pg, WG_PG, threaded, n, wg_rss) for _ in reps]
        lite_t = [drain_writegate(b, wg_sqlite, WG_SQLITE, threaded, n, wg_rss) for _ in reps]
        cel = [drain_celery(b, kind, n, peer_rss["celery"]) for _ in reps]
        pro = [drain_procrastinate(b, kind, n, peer_rss["procrastinate"]) for _ in reps]
        pg_label = f"drain {label} jobs/s, writegate PostgreSQL"
        lite_label = f"drain {label} jobs/s, writegate SQLite"
        b.add(f"{pg_label}, short kind", pg, "jobs/s", "Celery+Redis", cel, ">= 1.5")
        b.add(f"{pg_label}, short kind", pg, "jobs/s", "procrastinate", pro, ">= 1.2")
        b.add(f"{lite_label}, short kind", lite, "jobs/s", "Celery+Redis", cel, ">= 1.5")
        b.add(f"{pg_label}, threaded kind", pg_t, "jobs/s", "Celery+Redis", cel, "(compare)")
        b.add(f"{pg_label}, threaded kind", pg_t, "jobs/s", "procrastinate", pro, "(compare)")
        b.add(f"{lite_label}, threaded kind", lite_t, "jobs/s", "Celery+Redis", cel, "(compare)")
    b.add(
        "peak RSS, writegate worker",
        [max(wg_rss)],
        "MB",
        "Celery worker process",
        [max(peer_rss["celery"])],
        "(lower is better)",
    )
    b.add(
        "peak RSS, writegate worker",
        [max(wg_rss)],
        "MB",
        "procrastinate worker",
        [max(peer_rss["procrastinate"])],
        "(lower is better)",
    )


def scaling(b: Bench, wg_pg: Services) -> None:
    print("[scaling] writegate PostgreSQL no-op drain with 1, 2, 4 workers", flush=True)
    rss: list[float] = []
    reps = range(b.drain_repeat)
    # The short no-op kind: claimed by the dispatcher, run in each worker's group commit.
    one = [drain_writegate(b, wg_pg, WG_PG, "bench.noop", 1, rss) for _ in reps]
    for n in (2, 4):
        runs = [drain_writegate(b, wg_pg, WG_PG, "bench.noop", n, rss) for _ in reps]
        b.add(
            f"scaling: drain jobs/s with {n} workers (PostgreSQL)",
            runs,
            "jobs/s",
            "1 worker",
            one,
            "(>= 1 on 2 cores)",
        )


# -- 3. pickup latency -----------------------------------------------------------------------


class HttpClient:
    """A lean keep-alive HTTP/1.1 client (the standard library's) for the pickup POSTs.

    Pickup is timed from just before the submit, so the client's own cost is in the figure.
    On an idle loopback connection httpx took 0.5-1 ms more per POST than this client (to
    the bare ceiling app, here: p50 1.8-2.1 ms against 1.1-1.5 ms), time that is the
    client's, not the server's; the peers are timed with their own lean clients (redis-py,
    psycopg).
    """

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, path: str, body: str) -> bytes:
        """POST a JSON body; the response body, or an error for a non-2xx status."""
        self.conn.request("POST", path, body.encode(), {"content-type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if not 200 <= response.status < 300:
            raise RuntimeError(f"POST {path}: {response.status} {data[:200]!r}")
        return data

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def pickup_series(submit: Callable[[], object], path: str, count: int) -> list[float]:
    """Submit one job at a time; ms from just before submit to its handler's mark."""
    base = marks.count(path)
    out = []
    for i in range(count):
        t0 = time.time()
        submit()
        deadline = time.monotonic() + 30
        while marks.count(path) <= base + i:
            if time.monotonic() > deadline:
                raise RuntimeError("pickup: job did not run within 30s")
            time.sleep(0.0005)
        out.append((marks.read(path)[base + i] - t0) * 1000)
        time.sleep(0.02)
    return out


def pickup(b: Bench, wg_sqlite: Services, wg_pg: Services) -> None:
    count = 40
    print(f"[pickup] {count} jobs one at a time, x{b.repeat}", flush=True)
    from bench.peers.celery_app import noop as cnoop
    from bench.peers.procrastinate_app import app as papp
    from bench.peers.procrastinate_app import noop as pnoop

    reset_writegate(wg_sqlite)
    reset_writegate(wg_pg)
    reset_peers()
    names = (EMBEDDED_PICKUP, PG_PICKUP, "celery", "procrastinate")
    paths = {name: str(TMP / f"marks-{uuid.uuid4().hex[:8]}") for name in names}
    port = procs.free_port()
    # Embedded: POST to serve; its own worker is woken in-process by the COMMIT.
    server = procs.writegate_serve(WG_SQLITE, port, worker=True, BENCH_MARKS=paths[names[0]])
    # PostgreSQL: a separate worker process, woken by LISTEN/NOTIFY.
    worker = procs.writegate_worker(WG_PG, BENCH_MARKS=paths[PG_PICKUP])
    celery = procs.spawn(
        [
            "-m",
            "celery",
            "-A",
            "bench.peers.celery_app",
            "worker",
            "--pool",
            "prefork",
            "-c",
            "1",
            "--loglevel",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        BENCH_MARKS=paths["celery"],
    )
    proc = procs.spawn(
        ["-m", "procrastinate", "--app", "bench.peers.procrastinate_app.app", "worker", "-c", "1"],
        BENCH_MARKS=paths["procrastinate"],
    )
    res: dict[str, list[list[float]]] = {name: [] for name in names}
    with procs.running(server, worker, celery, proc), papp.open():
        procs.wait_http(f"http://127.0.0.1:{port}/docs")
        client = HttpClient(port)

        def post() -> None:
            client.post("/bench/one-post-create-session-job", BODY % uuid.uuid4().hex)

        def defer() -> None:
            # A job in a durable commit of its own: the counterpart of delay() and defer().
            wg_pg.jobs.defer(kind="bench.noop", payload={}, tenant="bench")

        submits: dict[str, Callable[[], object]] = {
            EMBEDDED_PICKUP: post,
            PG_PICKUP: defer,
            "celery": cnoop.delay,
            "procrastinate": pnoop.defer,
        }
        time.sleep(3.0)  # let every worker reach its idle wait
        for name, submit in submits.items():  # one warm-up job each, not counted
            pickup_series(submit, paths[name], 1)
        # Rounds of every system in turn, as in the accept section: this VM's speed drifts
        # over minutes, and a ratio means most when its two sides ran seconds apart.
        for _ in range(b.repeat):
            for name, submit in submits.items():
                res[name].append(pickup_series(submit, paths[name], count))
        client.close()
    for path in paths.values():
        os.unlink(path)

    def p50s(name: str) -> list[float]:
        return [pct(s, 0.5) for s in res[name]]

    def p99s(name: str) -> list[float]:
        return [pct(s, 0.99) for s in res[name]]

    for name in (EMBEDDED_PICKUP, PG_PICKUP):
        for peer in ("celery", "procrastinate"):
            b.add(
                f"pickup p50, {name}",
                p50s(name),
                "ms",
                f"{peer} p50",
                p50s(peer),
                "<= 1.0 (and <= 5 ms)",
                paired=True,
            )
        b.add(
            f"pickup p99, {name}",
            p99s(name),
            "ms",
            "procrastinate p99",
            p99s("procrastinate"),
            "<= 1.0",
            paired=True,
        )
    b.notes["pickup_ms"] = {k: [[round(x, 3) for x in s] for s in v] for k, v in res.items()}


# -- 4. backlog: claim cost ---------------------------------------------------------------------


def claim_samples(svc: Services, n: int, kind: str = "bench.noop") -> list[float]:
    """Milliseconds per claim of 10 jobs (`jobs.claim`, committed), after 3 warm-up claims."""
    for _ in range(3):  # warm caches equally for every backlog
        svc.jobs.claim("bench-claimer", [kind], 10)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        got = svc.jobs.claim("bench-claimer", [kind], 10)
        samples.append((time.perf_counter() - t0) * 1000)
        assert len(got) == 10
    return samples


def backlog(b: Bench, wg_sqlite: Services, wg_pg: Services) -> None:
    print("[backlog] claim time with 1k vs 100k queued jobs", flush=True)
    for label, svc in (("PostgreSQL", wg_pg), ("SQLite", wg_sqlite)):
        times: dict[int, list[float]] = {}
        picks: dict[int, list[float]] = {}
        after: dict[int, list[float]] = {}
        behind: dict[int, list[float]] = {}
        for size in (1_000, 100_000):
            reset_writegate(svc)  # no dead rows or WAL left by earlier sections
            fill_writegate(svc, "bench.noop", size)
            settle(svc)
            times[size] = claim_samples(svc, 50)  # 530 of the 1k backlog are claimed in all
            picks[size] = pick_times(svc, 200)
            b.notes[f"claim_plan_{label}_{size}"] = claim_plan(svc)
            # Another kind's jobs, queued after the backlog: a worker's claim of its other
            # group of kinds (threaded ones, under a backlog of short ones) must not read it.
            fill_writegate(svc, "bench.row", 530)
            settle(svc)
            behind[size] = claim_samples(svc, 50, "bench.row")
            # The same backlog, every job ordered after another (`after_id`, as jef-one's
            # dependent accepts are): the claim must check each one's dependency is final.
            reset_writegate(svc)
            fill_writegate(svc, "bench.noop", size)
            with svc.db.write() as s:  # a job that is gone counts as final
                s.execute(text("UPDATE jobs SET after_id = 'gone'"))
            settle(svc)
            after[size] = claim_samples(svc, 50)
            b.notes[f"claim_plan_{label}_{size}_after"] = claim_plan(svc)
        for name, by_size in (
            ("claim of 10 jobs", times),
            ("claim statement alone", picks),
            ("claim of 10 jobs with after_id", after),
            ("claim of 10 of another kind", behind),
        ):
            b.add(
                f"{name}, 100k backlog, {label}",
                [med(by_size[100_000])],
                "ms",
                "1k backlog",
                [med(by_size[1_000])],
                "~1.0 (flat)",
            )
        plan = b.notes[f"claim_plan_{label}_100000"]
        print(f"    plan uses ix_jobs_claim: {'ix_jobs_claim' in plan}", flush=True)
    reset_writegate(wg_pg)
    reset_writegate(wg_sqlite)


def settle(svc: Services) -> None:
    """Vacuum and analyze (PostgreSQL) or checkpoint the WAL and analyze (SQLite)."""
    with svc.db.engine.connect() as c:
        if svc.db.is_postgres:
            c = c.execution_options(isolation_level="AUTOCOMMIT")
            c.execute(text("VACUUM ANALYZE jobs"))
        else:
            c.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            c.execute(text("ANALYZE jobs"))
            c.commit()


def ten_noops(svc: Services) -> dict[str, Any]:
    """The claim statement's parameters for 10 `bench.noop` jobs, now."""
    return svc.jobs.claim_params("bench-claimer", [(["bench.noop"], 10)])


def pick_times(svc: Services, n: int) -> list[float]:
    """Milliseconds per run of the claim statement alone, rolled back (no commit)."""
    out = []
    with svc.db.write_engine.connect() as conn:
        for _ in range(n):
            tx = conn.begin()
            t0 = time.perf_counter()
            assert len(svc.jobs.sql.claim.fetch(conn, ten_noops(svc))) == 10
            out.append((time.perf_counter() - t0) * 1000)
            tx.rollback()
    return out


def claim_plan(svc: Services) -> str:
    """The query plan of the claim statement (`jobs.sql.claim`) with a claim's own values."""
    claim = svc.jobs.sql.claim
    explain = "EXPLAIN " if svc.db.is_postgres else "EXPLAIN QUERY PLAN "
    with svc.db.write_engine.connect() as conn:  # EXPLAIN without ANALYZE: nothing runs
        rows, _ = driver_fetch(conn, explain + claim.sql, claim.bind(ten_noops(svc)))
    return "\n".join(str(r[0] if svc.db.is_postgres else r[-1]) for r in rows)


# -- the table --------------------------------------------------------------------------------


def table(b: Bench) -> str:
    head = f"{'figure':<62} {'value':>10} {'baseline':>34} {'ratio':>6}  goal"
    lines = [head, "-" * len(head)]
    for r in b.rows:
        base = f"{r.baseline_name} {r.baseline:.4g}"
        lines.append(
            f"{r.figure:<62} {r.value:>8.4g} {r.unit:<5}{base:>30} {r.ratio:>6.2f}  {r.goal}"
        )
    paired = [r for r in b.rows if r.paired]
    if paired:
        # The ratio above is median / median; a round's own ratio shows how much it moves.
        lines += ["", "ratio in each round (value / baseline measured seconds apart):"]
        for r in paired:
            each = "  ".join(f"{x:.2f}" for x in r.round_ratios())
            lines.append(f"  {r.figure:<62} {each}")
    return "\n".join(lines)
