"""Where jef-one's accept spends its time: `python -m bench.accept_profile [threads|batch]`.

`threads [ROUNDS] [sqlite,pg] [worker]`: the bare FastAPI ceiling and `writegate serve` (the
real jef-one module; `--no-worker`, or with its embedded worker running the session jobs to
`verified` given `worker`) under `wrk -c32`, in turn, 4 s each. For each run it prints
req/s and p50, how busy the machine was, and the CPU each thread of the server spent per
request (user + system, from /proc), so the event loop and the commit threads can be told
apart, and for writegate the group commits a second and their mean size (its `/metrics`).

`jobs [N]`: jef-one's session jobs as the worker runs them (claimed N at a time, then the
kind's batch write: the handler and one completion statement, in one transaction), alone,
on SQLite and on PostgreSQL. It prints wall time and CPU per job.

`batch [N]`: one group-commit batch of N session accepts (all queued in one event-loop
iteration, so they share one transaction), alone (no HTTP, no load), on SQLite and on
PostgreSQL: two rounds, each of 300 batches of jef-one's `accept_session`, then 300 of the
bench module's accept (the same enqueue with no reads and no exclusive key), on an event loop
attached to the group commit as `serve`'s is (the batches run on the loop). It prints wall
time and the process's CPU per batch, and on SQLite the WAL frames each of jef-one's
batches writes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import noop_module, procs, run
from bench.schemas import CreateSession
from writegate.core.services import Services
from writegate.core.worker.short import KindBatch
from writegate.modules import jef_one as jef_one_module
from writegate.modules.jef_one import service as jef_one
from writegate.modules.jef_one.jobs import KIND_SESSION
from writegate.modules.jef_one.models import Employee, Entity
from writegate.modules.jef_one.schemas import CreateSessionJob

TICK = os.sysconf("SC_CLK_TCK")
MODULES = ["jef_one", "bench.noop_module"]
SECONDS = 4


def thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """User and system CPU seconds of each thread of a process, by 'main|thread:tid'."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        role = "main" if int(tid) == pid else "thread"  # serve's main thread runs the loop
        out[f"{role}:{tid}"] = (int(fields[11]) / TICK, int(fields[12]) / TICK)
    return out


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def start_ceiling() -> tuple[subprocess.Popen[bytes], str]:
    """The ceiling (`bench.api_ceiling`) on a free port: its process and jef-one's accept URL."""
    port = procs.free_port()
    ceiling = procs.spawn(
        ["-m", "uvicorn", "bench.api_ceiling:app", "--port", str(port), "--log-level", "warning"]
    )
    return ceiling, f"http://127.0.0.1:{port}{run.JEF_ONE_PATH}"


def batches(url: str) -> tuple[float, float]:
    """(batches, writes in them) so far, from the server's `/metrics`."""
    base = url.rsplit("/", 1)[0]
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text)
        for s in family.samples
    }
    name = "writegate_group_commit_batch_size"
    return samples.get(f"{name}_count", 0.0), samples.get(f"{name}_sum", 0.0)


def threads(rounds: int, dbs: list[str], worker: bool = False) -> None:
    """Per-thread CPU per request of the ceiling and of writegate under wrk."""
    run.TMP.mkdir(parents=True, exist_ok=True)
    targets = {"ceiling": start_ceiling()}
    for db in dbs:
        url = run.WG_SQLITE if db == "sqlite" else run.WG_PG
        if db == "pg":
            run.recreate_pg("writegate_bench_wg")
        svc = run.writegate_services(url, MODULES)
        jef_one_module.create_web(svc)
        run.reset_writegate(svc)
        provision(svc)  # with the worker on, every session job ends verified
        svc.close()
        port = procs.free_port()
        server = procs.writegate_serve(
            url, port, worker=worker, WRITEGATE_MODULES=json.dumps(MODULES)
        )
        targets[db] = (server, f"http://127.0.0.1:{port}{run.JEF_ONE_PATH}")
    with procs.running(*(p for p, _ in targets.values())):
        for _, url in targets.values():
            procs.wait_http(url.rsplit("/", 1)[0] + "/docs")
            run.wrk(url, 1, 32)
        for _ in range(rounds):
            for name, (proc, url) in targets.items():
                counted = name != "ceiling"
                count0, sum0 = batches(url) if counted else (0.0, 0.0)
                before, (busy0, total0) = thread_cpu(proc.pid), machine_cpu()
                result = run.wrk(url, SECONDS, 32)
                after, (busy1, total1) = thread_cpu(proc.pid), machine_cpu()
                count1, sum1 = batches(url) if counted else (0.0, 0.0)
                n = result["rps"] * SECONDS
                per = []
                for key, (user, system) in after.items():
                    u0, s0 = before.get(key, (0.0, 0.0))
                    if (user - u0) + (system - s0) > 0.02:
                        per.append((key, (user - u0) / n * 1e6, (system - s0) / n * 1e6))
                per.sort(key=lambda t: -(t[1] + t[2]))
                each = "  ".join(f"{k} {u:.0f}+{s:.0f}" for k, u, s in per)
                grouped = ""
                if count1 > count0:
                    mean = (sum1 - sum0) / (count1 - count0)
                    grouped = f"  {(count1 - count0) / SECONDS:.0f} batches/s of {mean:.1f}"
                print(
                    f"{name:8} {result['rps']:7.0f} req/s  p50 {result['p50']:.2f} ms  "
                    f"machine {(busy1 - busy0) / (total1 - total0):.0%} busy  "
                    f"us/request (user+sys): {each}{grouped}",
                    flush=True,
                )


def batch(n: int, rounds: int = 2) -> None:
    """Wall time and CPU of one group-commit batch of n accepts, alone: jef-one's and the bench
    module's (the same enqueue, no reads and no key), in alternated rounds."""
    run.TMP.mkdir(parents=True, exist_ok=True)
    run.recreate_pg("writegate_bench_wg")
    for label, url in (("SQLite", run.WG_SQLITE), ("PostgreSQL", run.WG_PG)):
        svc = run.writegate_services(url, MODULES)
        jef_one_module.create_web(svc)  # the accept write lives on the module's web side
        run.reset_writegate(svc)
        accepts = _Batches(svc, n)
        for which in ("jef-one", "bench module"):
            for _ in range(50):
                accepts.one(which)
        for _ in range(rounds):
            for which in ("jef-one", "bench module"):
                times = 300
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(times):
                    accepts.one(which)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                line = (
                    f"{label}: {which}, batch of {n}: {wall / times * 1e3:.2f} ms wall, "
                    f"{cpu / times * 1e3:.2f} ms CPU ({cpu / times / n * 1e6:.0f} us per accept)"
                )
                if svc.db.is_sqlite and which == "jef-one":
                    frames = wal_frames(svc, functools.partial(accepts.one, "jef-one"))
                    line += f", {frames:.1f} WAL frames per batch"
                print(line, flush=True)
        accepts.close()
        svc.close()


class _Batches:
    """Batches of n accepts of new sessions, each batch queued in one event-loop iteration."""

    def __init__(self, svc: Services, n: int) -> None:
        self.svc, self.n, self.count = svc, n, 0
        self.prefix = uuid.uuid4().hex[:8]
        self.runner = asyncio.Runner()
        # As `serve` does: the batches of this loop's callers run on it, not on commit threads.
        svc.db.attach_loop(self.runner.get_loop())
        self.bench_write = noop_module.Accepts(svc.jobs)

    def one(self, which: str) -> None:
        """One batch of jef-one's accepts, or of the bench module's."""
        self.count += 1
        ids = [f"s-{self.prefix}-{self.count}-{i}" for i in range(self.n)]
        self.runner.run(self._accepts(which, ids))

    def close(self) -> None:
        """Detach and close the event loop the batches ran on."""
        self.runner.run(self.svc.db.detach_loop())
        self.runner.close()

    async def _accepts(self, which: str, session_ids: list[str]) -> None:
        fields = {"entity_number": "1001", "employee_number": "00001", "app_number": "001"}
        if which == "jef-one":
            jef = [CreateSessionJob(session_id=i, app_type="mobile", **fields) for i in session_ids]
            await asyncio.gather(*(jef_one.accept_session(self.svc, b) for b in jef))
        else:
            plain = [CreateSession(session_id=i, app_type="mobile", **fields) for i in session_ids]
            group = self.svc.db.group
            await asyncio.gather(*(group.run_many(self.bench_write, b) for b in plain))


def jobs(n: int, batches: int = 40) -> None:
    """Wall time and CPU per jef-one session job, claimed and run n at a time, alone."""
    run.TMP.mkdir(parents=True, exist_ok=True)
    run.recreate_pg("writegate_bench_wg")
    for label, url in (("SQLite", run.WG_SQLITE), ("PostgreSQL", run.WG_PG)):
        svc = run.writegate_services(url, MODULES)
        jef_one_module.create_web(svc)
        run.reset_writegate(svc)
        provision(svc)
        accepts = svc.extras[jef_one_module.jobs.NAME]
        for b in range(batches + 10):
            with svc.db.write() as s:
                accepts(s, [_session_accept(f"j-{b}-{i}-{uuid.uuid4().hex[:6]}") for i in range(n)])
        write = KindBatch(svc.registry.get(KIND_SESSION), svc.jobs, "bench")

        def one(svc: Services = svc, write: KindBatch = write) -> int:
            claimed = svc.jobs.claim("bench", [KIND_SESSION], n)
            with svc.db.write() as s:
                outcomes = write(s, claimed)
            if any(isinstance(o, BaseException) for o in outcomes):
                raise RuntimeError(f"a job failed: {outcomes}")
            return len(claimed)

        for _ in range(10):
            one()
        wall, cpu = time.perf_counter(), time.process_time()
        done = sum(one() for _ in range(batches))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{label}: {done} session jobs, {n} a batch: {wall / done * 1e6:.0f} us wall, "
            f"{cpu / done * 1e6:.0f} us CPU per job",
            flush=True,
        )
        svc.close()


def _session_accept(session_id: str) -> jef_one.Accept:
    """One session accept of employee 00001 of entity 1001."""
    body = CreateSessionJob(
        entity_number="1001",
        employee_number="00001",
        session_id=session_id,
        app_type="mobile",
        app_number="001",
    )
    return jef_one.Accept(KIND_SESSION, body.model_dump(), session_id)


def provision(svc: Services) -> None:
    """Entity 1001 and its employee 00001, active: every session job ends verified."""
    now = svc.clock.now()
    with svc.db.write() as s:
        s.merge(
            Entity(
                entity_number="1001",
                entity_name="B",
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
        s.merge(
            Employee(
                entity_number="1001",
                employee_number="00001",
                employee_name="B",
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )


def wal_frames(svc: Services, one: Any, batches: int = 20) -> float:
    """WAL frames one batch appends, from the WAL's growth after emptying it."""
    wal = Path(f"{svc.db.engine.url.database}-wal")
    raw = svc.db.engine.raw_connection()  # the driver's own autocommit, outside any BEGIN
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        raw.close()
    for _ in range(batches):  # few enough to stay under the 1,000-page autocheckpoint
        one()
    return wal.stat().st_size / (4096 + 24) / batches


def main() -> None:
    """Run one of the two profiles."""
    what = sys.argv[1] if len(sys.argv) > 1 else "threads"
    if what == "threads":
        rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
        dbs = sys.argv[3].split(",") if len(sys.argv) > 3 else ["sqlite", "pg"]
        threads(rounds, dbs, worker=sys.argv[4:5] == ["worker"])
    elif what == "jobs":
        jobs(int(sys.argv[2]) if len(sys.argv) > 2 else 64)
    elif what == "batch":
        batch(int(sys.argv[2]) if len(sys.argv) > 2 else 16)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
