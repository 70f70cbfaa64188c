"""`python -m bench`: run every benchmark in one go and print one table: figure, baseline,
ratio.

Every figure is the median of --repeat runs; ratios are value / baseline from this run.
Results go to bench/results/<utc time>.json and bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

from bench import apis
from bench.run import (
    RESULTS,
    TMP,
    WG_PG,
    WG_SQLITE,
    Bench,
    accept,
    backlog,
    drain,
    peer_setup,
    pickup,
    recreate_pg,
    scaling,
    table,
    writegate_services,
)


def main() -> None:
    """Parse the options, run the sections asked for, print and write the table."""
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument(
        "--full",
        action="store_true",
        help="the long run: 3 runs per drain and scaling figure, 4 s wrk runs (~10 min here)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median is reported)")
    ap.add_argument(
        "--drain-repeat",
        type=int,
        default=None,
        help="runs per drain and scaling figure (default 1, since each starts processes; --full 3)",
    )
    ap.add_argument("--jobs", type=int, default=20_000, help="jobs per drain run (default 20,000)")
    ap.add_argument(
        "--duration", type=int, default=None, help="seconds per wrk run (default 2; --full 4)"
    )
    ap.add_argument("--connections", type=int, default=32, help="wrk connections")
    ap.add_argument("--workers", type=int, default=2, help="worker processes in the drain runs")
    ap.add_argument(
        "--only", default="accept,drain,pickup,scaling,backlog,apis", help="sections to run"
    )
    # -- the per-API section (bench/apis.py) --
    ap.add_argument(
        "--sync-users", type=int, default=100_000, help="apis: users of the BokaMera sync"
    )
    args = ap.parse_args()
    if args.drain_repeat is None:
        args.drain_repeat = 3 if args.full else 1
    if args.duration is None:
        args.duration = 4 if args.full else 2
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    TMP.mkdir(parents=True, exist_ok=True)
    for f in TMP.glob("writegate.db*"):
        f.unlink()
    load = os.getloadavg()
    b = Bench(
        args.repeat,
        args.drain_repeat,
        args.jobs,
        args.duration,
        args.connections,
        args.workers,
        [],
        {},
    )
    b.notes["load_at_start"] = load
    b.notes["cpus"] = os.cpu_count()
    print(
        f"writegate bench: {os.cpu_count()} CPUs, "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    started = time.monotonic()
    recreate_pg("writegate_bench_wg")
    wg_sqlite = writegate_services(WG_SQLITE)
    wg_pg = writegate_services(WG_PG)
    only = set(args.only.split(","))
    if only & {"drain", "pickup"}:
        peer_setup()
    try:
        sections: list[tuple[str, Callable[[], None]]] = [
            ("accept", lambda: accept(b, wg_sqlite, wg_pg)),
            ("drain", lambda: drain(b, wg_sqlite, wg_pg)),
            ("pickup", lambda: pickup(b, wg_sqlite, wg_pg)),
            ("scaling", lambda: scaling(b, wg_pg)),
            ("backlog", lambda: backlog(b, wg_sqlite, wg_pg)),
            # -- per-API section (bench/apis.py) --
            ("apis", lambda: apis.apis(b, args.sync_users)),
        ]
        for name, run_section in sections:
            if name in only:
                t0 = time.monotonic()
                run_section()
                spent = round(time.monotonic() - t0, 1)
                b.notes.setdefault("section_seconds", {})[name] = spent
                print(f"  ({name}: {spent}s)", flush=True)
    finally:
        wg_sqlite.close()
        wg_pg.close()
    load_end = os.getloadavg()
    b.notes["load_at_end"] = load_end
    b.notes["seconds"] = round(time.monotonic() - started, 1)
    print()
    print(table(b))
    print(
        f"\n{len(b.rows)} figures, medians of {b.repeat} runs ({b.drain_repeat} for drain and "
        "scaling); ratio = value / baseline. "
        f"Load average {load[0]:.2f} at start, {load_end[0]:.2f} at end; {b.notes['seconds']}s."
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc = {
        "when": stamp,
        "options": vars(args),
        "rows": [{**asdict(r), "ratio": r.ratio} for r in b.rows],
        "notes": b.notes,
        "table": table(b),
    }
    for name in (f"{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(json.dumps(doc, indent=2, default=str))
    print(f"written to bench/results/{stamp}.json")


if __name__ == "__main__":
    main()
