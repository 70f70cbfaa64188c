"""The claim over a backlog of dependent jobs: `python -m bench.claim_deps [N] [--only db,...]`.

On SQLite and on PostgreSQL, queues N (100,000) jobs of one kind in one of these shapes and
times `jobs.claim` of 10 (committed) and the claim statement alone (rolled back), the median
of 30 each after 3 warm-up claims, and the reaper's look for orphaned waiters (median of
10), with `VACUUM ANALYZE` or `ANALYZE` before:

- `none`: no job has an `after_id` (the floor);
- `done`: every job runs after another job that has succeeded (still in the table);
- `gone`: every job runs after a job that is no longer in the table (pruned);
- `pairs`: every second job runs after the queued job before it (jef-one's dependent accepts);
- `blocked`: all but the last 1,000 run after one job that is still running (the worst
  case before waiting jobs were parked out of the claim's index: a claim probed each).

A job after an active one is written as `enqueue` writes it: parked (`waiting_on`).

Prints one line per database and shape, and each claim statement's plan with `-v`.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from bench import run
from writegate.core.jobs import JobRow
from writegate.core.services import Services

SHAPES = ("none", "done", "gone", "pairs", "blocked")
KIND = "bench.noop"
#: the jobs `blocked` leaves free at the end of the queue
FREE = 1_000


def _job(t: datetime, after: str | None, *, waits: bool = False, **kw: Any) -> dict[str, Any]:
    row = {
        "id": str(uuid.uuid4()),
        "kind": KIND,
        "tenant": "bench",
        "payload": {},
        "status": "queued",
        "attempts": 0,
        "max_attempts": 5,
        "run_after": t,
        "created_at": t,
        "updated_at": t,
        "after_id": after,
        "waiting_on": after if waits else None,
    }
    row.update(kw)
    return row


def rows_of(shape: str, n: int) -> list[dict[str, Any]]:
    """The jobs of one shape: n queued of KIND, and the jobs they wait for."""
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=60)
    other = {"kind": "bench.other", "attempts": 1}
    out: list[dict[str, Any]] = []
    blocker = _job(start, None, status="running", **other)
    for i in range(n):
        t = start + timedelta(microseconds=i)
        if shape == "done":
            dep = _job(t, None, status="succeeded", finished_at=t, **other)
            out += [dep, _job(t, dep["id"])]
        elif shape == "gone":
            out.append(_job(t, str(uuid.uuid4())))
        elif shape == "pairs":
            out.append(_job(t, out[-1]["id"] if i % 2 else None, waits=bool(i % 2)))
        elif shape == "blocked":
            waits = i < n - FREE
            out.append(_job(t, blocker["id"] if waits else None, waits=waits))
        else:
            out.append(_job(t, None))
    return [blocker, *out] if shape == "blocked" else out


def fill(svc: Services, rows: list[dict[str, Any]]) -> None:
    """Insert the rows 5,000 at a time."""
    for start in range(0, len(rows), 5000):
        with svc.db.write() as s:
            s.execute(insert(JobRow), rows[start : start + 5000])


def _reaper_looks(svc: Services, n: int) -> list[float]:
    """Milliseconds per `release_orphans` (a worker's reaper does one each interval)."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        svc.jobs.release_orphans()
        out.append((time.perf_counter() - start) * 1000)
    return out


def probe(url: str, n: int, verbose: bool) -> None:
    """Print the claim's and the statement's p50 for every shape on one database."""
    svc = run.writegate_services(url)
    db = "PostgreSQL" if svc.db.is_postgres else "SQLite"
    for shape in SHAPES:
        run.reset_writegate(svc)
        fill(svc, rows_of(shape, n))
        run.settle(svc)
        claims = statistics.median(run.claim_samples(svc, 30))
        alone = statistics.median(run.pick_times(svc, 30))
        reaper = statistics.median(_reaper_looks(svc, 10))
        print(
            f"{db:10s} {n} queued, {shape:8s} claim of 10 p50 {claims:8.2f} ms,"
            f" statement alone {alone:8.2f} ms, reaper's look for orphaned waiters"
            f" {reaper:8.2f} ms",
            flush=True,
        )
        if verbose:
            print(run.claim_plan(svc), flush=True)
    run.reset_writegate(svc)
    svc.close()


def main() -> None:
    """Probe both databases."""
    ap = argparse.ArgumentParser(prog="python -m bench.claim_deps", description=__doc__)
    ap.add_argument("jobs", nargs="?", type=int, default=100_000)
    ap.add_argument("--only", default="SQLite,PostgreSQL", help="databases, comma-separated")
    ap.add_argument("-v", action="store_true", help="print each claim statement's plan")
    args = ap.parse_args()
    run.TMP.mkdir(parents=True, exist_ok=True)
    if "SQLite" in args.only:
        for f in run.TMP.glob("claim-deps.db*"):
            f.unlink()
        probe(f"sqlite:///{run.TMP / 'claim-deps.db'}", args.jobs, args.v)
    if "PostgreSQL" in args.only:
        run.recreate_pg("writegate_bench_claim_deps")
        probe(f"{run.PG_BASE}/writegate_bench_claim_deps", args.jobs, args.v)


if __name__ == "__main__":
    main()
