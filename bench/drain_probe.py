"""Where a drain's CPU goes: `python -m bench.drain_probe [pg|sqlite] [KIND] [JOBS] [WORKERS]
[RUNS]`.

Drains JOBS queued jobs of KIND (default `bench.row_threaded`, 8,000) with WORKERS
`writegate worker` processes (default 2), as `--only drain` does (`bench.run.drain_writegate`),
RUNS times (default 3). For each run it prints jobs/s and, over the run (start-up and the
queue's fill included), the machine's CPU and PostgreSQL's (its processes and the backends
that ended meanwhile, read from the postmaster's children's times) per job. The workers see
this environment: `WRITEGATE_WORKER_CONCURRENCY=32`, or `PYTHONPATH=<another tree>/src:.`
to measure another build; alternate two commands to compare.
"""

from __future__ import annotations

import sys
import time

import psutil

from bench import run


def postgres_cpu() -> float:
    """CPU seconds of PostgreSQL's processes, and of its backends that have ended."""
    total = 0.0
    for p in psutil.process_iter(["name", "cpu_times"]):
        if (p.info["name"] or "").startswith("postgres") and p.info["cpu_times"]:
            t = p.info["cpu_times"]
            total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_cpu() -> float:
    """CPU seconds the machine spent busy."""
    t = psutil.cpu_times()
    return float(t.user + t.system + t.nice + t.irq + t.softirq)


def main() -> None:
    """Run the drains."""
    args = sys.argv[1:]
    db = args[0] if args else "pg"
    kind = args[1] if len(args) > 1 else "bench.row_threaded"
    defaults = ["8000", "2", "3"]
    jobs, workers, runs = (int(a) for a in args[2:5] + defaults[len(args[2:5]) :])
    run.TMP.mkdir(parents=True, exist_ok=True)
    if db == "pg":
        run.recreate_pg("writegate_bench_wg")
        url = run.WG_PG
    else:
        for f in run.TMP.glob("writegate.db*"):
            f.unlink()
        url = run.WG_SQLITE
    svc = run.writegate_services(url)
    bench = run.Bench.__new__(run.Bench)
    bench.jobs = jobs
    try:
        for _ in range(runs):
            pg0, busy0, t0 = postgres_cpu(), machine_cpu(), time.monotonic()
            rate = run.drain_writegate(bench, svc, url, kind, workers, [])
            pg, busy = postgres_cpu() - pg0, machine_cpu() - busy0
            print(
                f"{db} {kind}: {rate:7.0f} jobs/s  wall {time.monotonic() - t0:5.1f} s  "
                f"CPU a job: machine {busy / jobs * 1e6:5.0f} us, "
                f"PostgreSQL {pg / jobs * 1e6:4.0f} us",
                flush=True,
            )
    finally:
        svc.close()


if __name__ == "__main__":
    main()
