"""Keyset paging of the console's job list at 1M jobs: the last page costs what the first does.

    python bench/console_paging.py                      # SQLite and PostgreSQL, 1M jobs each
    python bench/console_paging.py --db sqlite --jobs 200000

Fills a fresh database with N jobs in bulk (one INSERT ... SELECT, not the job API), then
times one page of 50 at several depths, through `core.jobs_admin.page` and through
`GET /admin/api/jobs` on a live server, next to the OFFSET paging of `JobManager.find` for
contrast. Prints figures (median of repeats, in ms); asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from tests.harness import fresh_database, start_server  # noqa: E402

from writegate.core.jobs import JobRow  # noqa: E402
from writegate.core.jobs import operator as jobs_admin  # noqa: E402
from writegate.core.jobs.criteria import encode_cursor  # noqa: E402
from writegate.core.jobs.operator import JobFilter  # noqa: E402

PAGE = 50
DEPTHS = (0.0, 0.1, 0.5, 0.9, 1.0)

# Spread over ~11.6 days, one job a second; 90% succeeded, 5% failed, 5% queued.
_PG_FILL = """
INSERT INTO jobs (id, kind, tenant, payload, status, attempts, max_attempts, run_after,
                  created_at, updated_at, finished_at)
SELECT md5(g::text)::uuid::text,
       'bench.kind' || (g % 4),
       'tenant-' || (g % 100),
       '{}'::json,
       CASE WHEN g % 20 = 0 THEN 'failed' WHEN g % 20 = 1 THEN 'queued' ELSE 'succeeded' END,
       1, 5,
       timestamp '2026-01-01' + g * interval '1 second',
       timestamp '2026-01-01' + g * interval '1 second',
       timestamp '2026-01-01' + g * interval '1 second',
       CASE WHEN g % 20 = 1 THEN NULL ELSE timestamp '2026-01-01' + g * interval '1 second' END
FROM generate_series(1, :n) AS g
"""

_SQLITE_FILL = """
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
INSERT INTO jobs (id, kind, tenant, payload, status, attempts, max_attempts, run_after,
                  created_at, updated_at, finished_at)
SELECT lower(hex(randomblob(16))),
       'bench.kind' || (x % 4),
       'tenant-' || (x % 100),
       '{}',
       CASE WHEN x % 20 = 0 THEN 'failed' WHEN x % 20 = 1 THEN 'queued' ELSE 'succeeded' END,
       1, 5,
       datetime('2026-01-01', '+' || x || ' seconds') || '.000000',
       datetime('2026-01-01', '+' || x || ' seconds') || '.000000',
       datetime('2026-01-01', '+' || x || ' seconds') || '.000000',
       CASE WHEN x % 20 = 1 THEN NULL
            ELSE datetime('2026-01-01', '+' || x || ' seconds') || '.000000' END
FROM g
"""


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of fn in ms."""
    fn()  # warm caches and plans
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def run(db: str, n: int, repeats: int) -> None:
    """Fill, then print one table of page times for one database."""
    os.environ["WRITEGATE_TEST_DB"] = db
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as url:
        srv = start_server(url, embedded_worker=False)
        try:
            services = srv.services
            t = time.perf_counter()
            with services.db.write() as s:
                s.execute(text(_PG_FILL if services.db.is_postgres else _SQLITE_FILL), {"n": n})
            fill = time.perf_counter() - t
            if services.db.is_sqlite:
                # A bulk fill leaves every page in the WAL; a live database checkpoints as it
                # goes, so pages read from the WAL would time the fill, not the paging.
                with services.db.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            with services.db.write() as s:
                s.execute(text("ANALYZE"))
                _, key = services.auth.create(
                    s, name="bench-admin", tenant="*", roles=["superadmin"]
                )
            print(
                f"\n{db}: {n:,} jobs filled in {fill:.1f} s; page size {PAGE}, median of {repeats}"
            )
            for label, f in (
                ("all jobs", JobFilter()),
                ("status=failed", JobFilter(statuses=("failed",))),
            ):
                with services.db.read() as s:
                    total = s.scalar(
                        text(
                            "SELECT count(*) FROM jobs"
                            + (" WHERE status = 'failed'" if f.statuses else "")
                        )
                    )
                print(f"  {label} ({total:,} matching)")
                print("    depth   keyset (core)   keyset (HTTP)   OFFSET (JobManager.find)")
                with srv.client(headers={"x-api-key": key}) as http:
                    for depth in DEPTHS:
                        skip = min(int(total * depth), max(total - PAGE, 0))
                        with services.db.read() as s:
                            after = _cursor_at(s, f, skip)
                        status = f.statuses[0] if f.statuses else None

                        def core(after: Any = after, f: JobFilter = f) -> None:
                            with services.db.read() as s:
                                rows, _ = jobs_admin.page(s, f, limit=PAGE, after=after)
                                assert rows

                        params = {"limit": str(PAGE), **({"status": status} if status else {})}
                        if after is not None:
                            params["cursor"] = encode_cursor(after) or ""

                        def api(params: dict[str, str] = params) -> None:
                            r = http.get("/admin/api/jobs", params=params)
                            assert r.status_code == 200, r.text
                            assert r.json()["jobs"]

                        def offset(skip: int = skip, status: str | None = status) -> None:
                            with services.db.read() as s:
                                assert services.jobs.find(s, status=status, limit=PAGE, offset=skip)

                        reps = max(3, repeats // 4) if depth > 0.5 else repeats
                        print(
                            f"    {depth:>5.0%}   {timed(core, repeats):>10.2f} ms"
                            f"   {timed(api, repeats):>10.2f} ms   {timed(offset, reps):>12.2f} ms"
                        )
        finally:
            srv.stop()


def _cursor_at(s: Any, f: JobFilter, skip: int) -> Any:
    """The cursor that starts a page after `skip` jobs (set-up only: OFFSET, untimed)."""
    if skip == 0:
        return None
    q = (
        s.query(JobRow.created_at, JobRow.id)
        .filter(*jobs_admin.conditions(f))
        .order_by(JobRow.created_at.desc(), JobRow.id.desc())
        .offset(skip - 1)
        .limit(1)
    )
    row = q.one()
    return (row[0], row[1])


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        run(db, args.jobs, args.repeats)


if __name__ == "__main__":
    main()
