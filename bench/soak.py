"""Soak run: every API under a few hundred concurrent clients for minutes; prints figures.

    make soak                                   # both databases, 300 clients, 90 s each
    python bench/soak.py --db sqlite --seconds 300 --clients 400

Runs `writegate serve` (embedded worker) on a fresh database, drives the same scenarios as
tests/system/test_load_apis.py, drains the job queue and checks every accepted write is in
the database exactly once. Exits 1 on any 5xx, client error, lost/doubled write or RSS
growth after warm-up. Figures are printed, never asserted on time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import fresh_database  # noqa: E402
from tests.system.apis import present_modules  # noqa: E402
from tests.system.load import load_serve, rss_growth_ok  # noqa: E402


def soak(db: str, clients: int, seconds: float) -> bool:
    """One soak run on one database; True when it kept every promise."""
    os.environ["WRITEGATE_TEST_DB"] = db
    modules = present_modules()
    tmp = tempfile.mkdtemp(prefix="wg-soak-")
    with fresh_database(tmp) as url:
        figures, problems = load_serve(
            url, modules, clients=clients, seconds=seconds, log=f"{tmp}/serve.log"
        )
    fives = {s: n for s, n in figures.statuses.items() if s.startswith("5")}
    flat = rss_growth_ok(figures.rss_kib)
    print(f"[{db}] {figures.summary()}")
    step = max(1, len(figures.rss_kib) // 12)
    print(f"[{db}] RSS samples (MiB): {[r // 1024 for r in figures.rss_kib[::step]]}")
    print(
        f"[{db}] 5xx: {fives or 'none'}; client errors: {len(figures.errors)}; "
        f"lost/doubled writes: {problems or 'none'}; memory flat: {flat}; log {tmp}/serve.log"
    )
    for err in figures.errors[:5]:
        print(f"[{db}]   {err}")
    return not fives and not figures.errors and not problems and flat


def main() -> int:
    """Parse arguments and soak each requested database."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--clients", type=int, default=300)
    p.add_argument("--seconds", type=float, default=90)
    args = p.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    ok = [soak(db, args.clients, args.seconds) for db in dbs]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
