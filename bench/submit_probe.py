"""What submitting one job costs on PostgreSQL: `python -m bench.submit_probe [N]`.

Times, N times per variant with the variants interleaved and 20 ms idle before each (as a
job submitted at low load meets it): writegate's `enqueue` in a `db.write()` session and in
the group commit (`db.group.run_sync`, the path a module's accept takes, here with one caller),
writegate's `jobs.defer`, and the same INSERT on a bare psycopg connection, once in a
transaction (BEGIN, INSERT, COMMIT) and once in autocommit. Every variant waits for its
durable COMMIT. Prints the p50 and p90 of each, in ms.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from bench import run

KIND = "bench.noop"
INSERT = (
    "INSERT INTO jobs (id, kind, tenant, payload, status, attempts, max_attempts, run_after,"
    " created_at, updated_at) VALUES (%s, %s, 'bench', '{}', 'queued', 0, 5, %s, %s, %s)"
)


def main() -> None:
    """Run the five variants in turn and print their percentiles."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    name = "writegate_bench_submit"
    run.recreate_pg(name)
    url = f"{run.PG_BASE}/{name}"
    svc = run.writegate_services(url)
    in_tx = psycopg.connect(url)
    auto = psycopg.connect(url, autocommit=True)

    def session_enqueue() -> None:
        with svc.db.write() as s:
            svc.jobs.enqueue(s, kind=KIND, payload={}, tenant="bench")

    def group_enqueue() -> None:
        svc.db.group.run_sync(lambda s: svc.jobs.enqueue(s, kind=KIND, payload={}, tenant="bench"))

    def defer() -> None:
        svc.jobs.defer(kind=KIND, payload={}, tenant="bench")

    def driver(conn: psycopg.Connection) -> Callable[[], None]:
        def insert() -> None:
            now = datetime.now(UTC).replace(tzinfo=None)
            conn.execute(INSERT, (str(uuid.uuid4()), KIND, now, now, now))
            if not conn.autocommit:
                conn.commit()

        return insert

    variants = {
        "writegate enqueue in a write session": session_enqueue,
        "writegate enqueue in the group commit": group_enqueue,
        "writegate jobs.defer": defer,
        "psycopg BEGIN, INSERT, COMMIT": driver(in_tx),
        "psycopg autocommit INSERT": driver(auto),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    try:
        for _ in range(n):
            for label, submit in variants.items():
                time.sleep(0.02)
                t0 = time.perf_counter()
                submit()
                times[label].append((time.perf_counter() - t0) * 1000)
    finally:
        in_tx.close()
        auto.close()
        svc.close()
    for label, ms in times.items():
        ms.sort()
        p90 = ms[int(len(ms) * 0.9) - 1]
        print(f"{label:<40} p50 {statistics.median(ms):.3f} ms, p90 {p90:.3f} ms")


if __name__ == "__main__":
    main()
