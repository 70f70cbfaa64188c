"""What a short job's pickup costs over the bare claim: `python -m bench.claim_probe [N]`.

On SQLite and on PostgreSQL, queues one job and then claims it, N times per variant with the
variants interleaved: the worker's path for a short job (`jobs.claim`, then the handler and
`jobs.complete` in the group commit, timed to the moment the handler runs) against writegate's
compiled claim statement (`jobs.sql.claim`) on a connection of its own with no pool, events
or group commit (BEGIN, the statement, fetch, COMMIT, timed to the COMMIT: a short job runs
only after its claim is committed; its rows are not even made into jobs). Each is timed
right after the previous step (warm) and after a 50 ms idle gap, as a worker meets a job at
low load. Prints the p50 of each and their ratio.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bench import run
from writegate.core.services import Services
from writegate.core.worker import JobContext

KIND = "bench.noop"
GAPS = (0.0, 0.05)


def bare_claim(svc: Services, ran: list[float]) -> tuple[Callable[[], int], Callable[[], None]]:
    """The claim statement on an unpooled connection of its own: (claim, close)."""
    engine = create_engine(svc.db.url, poolclass=NullPool)
    conn = engine.connect()
    raw: Any = conn.connection.dbapi_connection
    if not svc.db.is_postgres:
        raw.isolation_level = None  # BEGIN IMMEDIATE is sent here, as writegate's writers do
    claim_sql = svc.jobs.sql.claim

    def claim() -> int:
        params = svc.jobs.claim_params("bare", [([KIND], 64)])
        if not svc.db.is_postgres:
            raw.execute("BEGIN IMMEDIATE")
        n = len(claim_sql.fetch(conn, params))
        if svc.db.is_postgres:
            raw.commit()
        else:
            raw.execute("COMMIT")
        ran[0] = time.perf_counter()
        return n

    def close() -> None:
        conn.close()
        engine.dispose()

    return claim, close


def probe(url: str, count: int) -> None:
    """Print the pickup's p50 for writegate and for the bare claim, warm and after idle."""
    svc = run.writegate_services(url)
    run.reset_writegate(svc)
    ran = [0.0]
    bare, close = bare_claim(svc, ran)

    def writegate() -> int:
        # What the worker does with a claimed short job: its handler and its success, in the
        # group commit (sync here: the worker's submit() resolves on the commit thread).
        claimed = svc.jobs.claim("probe", [KIND], 64)
        for job in claimed:

            def run_short(s: Session, job: Any = job) -> None:
                ctx = JobContext(svc.jobs, job, "probe", shared=s)
                ran[0] = time.perf_counter()
                svc.jobs.complete(s, job, "probe", None, ctx.progress)

            svc.db.group.run_sync(run_short)
        return len(claimed)

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
            for name, fn in (("writegate", writegate), ("bare", bare)):
                times.setdefault((name, gap), []).append(step(fn, gap))
    close()
    svc.close()
    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    for gap in GAPS:
        ours = statistics.median(times[("writegate", gap)])
        floor = statistics.median(times[("bare", gap)])
        print(
            f"{db:10s} idle {gap * 1000:3.0f} ms: short job claim to handler p50 {ours:.3f} ms,"
            f" bare claim committed {floor:.3f} ms, ratio {ours / floor:.2f}"
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
