"""What writegate's batch claim costs over the bare driver: `python -m bench.claim_probe [N]`.

On SQLite and on PostgreSQL, queues one job and then claims it, N times per variant with the
variants interleaved: `JobManager.run_batch` (the worker's claim, run and finish, timed to
the moment the handler runs) against the same compiled claim statement on a bare driver
connection (sqlite3 / psycopg: BEGIN, the statement, fetch, timed to the fetch; its rows are
not even made into jobs). Each is timed right after the previous step (warm) and after a
50 ms idle gap, as a worker meets a job at low load. Prints the p50 of each and writegate's
ratio to the driver.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench import run
from writegate.core.jobs import JobManager
from writegate.core.services import Services

KIND = "bench.noop"
GAPS = (0.0, 0.05)


def driver_claim(svc: Services, ran: list[float]) -> tuple[Callable[[], int], Callable[[], None]]:
    """The claim statement on a connection of the bare driver: (claim, close)."""
    jobs: JobManager = svc.jobs
    compiled = jobs._pick_and_take.compile(dialect=svc.db.engine.dialect)
    fixed = {k: v for k, v in compiled.params.items() if not k.startswith("c_")}
    if svc.db.is_postgres:
        import psycopg

        conn: Any = psycopg.connect(run.PG_BASE + "/writegate_bench_claim")
    else:
        import sqlite3

        conn = sqlite3.connect(svc.db.engine.url.database or "", isolation_level=None)
    positions = list(compiled.positiontup or ())

    def claim() -> int:
        now = jobs.clock.now()
        params = {
            **fixed,
            "c_now": now,
            "c_kinds": [KIND],
            "c_limit": 64,
            "c_owner": "driver",
            "c_lease": now + timedelta(seconds=30),
            "c_timeout": now + timedelta(seconds=600),
        }
        if svc.db.is_postgres:
            n = len(conn.execute(compiled.string, params).fetchall())
            ran[0] = time.perf_counter()
            conn.commit()
            return n
        for k in ("c_now", "c_lease", "c_timeout"):
            params[k] = params[k].isoformat(sep=" ")
        params["c_kinds"] = f'["{KIND}"]'
        conn.execute("BEGIN IMMEDIATE")
        n = len(conn.execute(compiled.string, [params[p] for p in positions]).fetchall())
        ran[0] = time.perf_counter()
        conn.execute("COMMIT")
        return n

    return claim, conn.close


def probe(url: str, count: int) -> None:
    """Print the claim's p50 for writegate and the bare driver, warm and after idle."""
    svc = run.writegate_services(url)
    run.reset_writegate(svc)
    ran = [0.0]
    driver, close = driver_claim(svc, ran)

    def handler(_open: Any, _job: Any) -> None:
        ran[0] = time.perf_counter()

    def writegate() -> int:
        return len(svc.jobs.run_batch("probe", [KIND], 64, handler))

    def step(fn: Callable[[], int], gap: float) -> float:
        with svc.db.write() as s:
            svc.jobs.enqueue(s, kind=KIND, payload={}, tenant="bench")
        time.sleep(gap)
        t0 = time.perf_counter()
        ran[0] = 0.0
        if fn() != 1:
            raise RuntimeError("the claim did not take the one queued job")
        return (ran[0] - t0) * 1000

    times: dict[tuple[str, float], list[float]] = {}
    for _ in range(count):
        for gap in GAPS:
            for name, fn in (("writegate", writegate), ("driver", driver)):
                times.setdefault((name, gap), []).append(step(fn, gap))
    close()
    svc.close()
    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    for gap in GAPS:
        ours = statistics.median(times[("writegate", gap)])
        floor = statistics.median(times[("driver", gap)])
        print(
            f"{db:10s} idle {gap * 1000:3.0f} ms: writegate claim to handler p50 {ours:.3f} ms,"
            f" bare driver {floor:.3f} ms, ratio {ours / floor:.2f}"
        )


def main() -> None:
    """Probe both databases."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    run.TMP.mkdir(parents=True, exist_ok=True)
    for f in run.TMP.glob("claim.db*"):
        f.unlink()
    run.recreate_pg("writegate_bench_claim")
    probe(f"sqlite:///{run.TMP / 'claim.db'}", count)
    probe(f"{run.PG_BASE}/writegate_bench_claim", count)


if __name__ == "__main__":
    main()
