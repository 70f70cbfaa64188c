"""The BokaMera sync alone: `python -m bench.bokamera_sync [--users 100000]`.

The per-API section's sync figure (bench/apis.py) without its wrk runs: one vaka-sim, one
`writegate serve` per database, the sync on each next to the bare script on the same kind of
database, in one run. Prints each sync's seconds, the ratio to the bare script and the serve's
RSS, and one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid

import httpx

from bench import apis, procs


def main() -> None:
    """Run the sync on SQLite and PostgreSQL, each against the bare script."""
    from bench.run import PG_BASE, TMP, recreate_pg

    ap = argparse.ArgumentParser(prog="python -m bench.bokamera_sync", description=__doc__)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--only", default="SQLite,PostgreSQL", help="databases, comma-separated")
    args = ap.parse_args()
    TMP.mkdir(parents=True, exist_ok=True)
    for pattern in ("sync-writegate.db*", "sync-bare.db*"):
        for f in TMP.glob(pattern):
            f.unlink()
    pg_db = "writegate_bench_sync"
    recreate_pg(pg_db)
    stacks = [
        s
        for s in (
            apis.Stack("SQLite", f"sqlite:///{TMP}/sync-writegate.db"),
            apis.Stack("PostgreSQL", f"{PG_BASE}/{pg_db}"),
        )
        if s.label in args.only.split(",")
    ]
    bare_urls = {"SQLite": f"sqlite:///{TMP}/sync-bare.db", "PostgreSQL": f"{PG_BASE}/{pg_db}"}
    vaka_port = procs.free_port()
    vaka = procs.spawn(
        [*procs.CLI, "vaka-sim", "--users", str(args.users), "--port", str(vaka_port)],
        WRITEGATE_MODULES=apis.MODULES,
    )
    apis.ensure_bokamera_key()
    for s in stacks:
        port = procs.free_port()
        s.base = f"http://127.0.0.1:{port}"
        s.proc = procs.writegate_serve(s.db_url, port, worker=True, WRITEGATE_MODULES=apis.MODULES)
    load = os.getloadavg()
    out: dict[str, object] = {"users": args.users, "load_at_start": load}
    with procs.running(vaka, *(s.proc for s in stacks if s.proc)):
        vaka_url = f"http://127.0.0.1:{vaka_port}"
        apis.wait_until(lambda: apis.answers(f"{vaka_url}/_sim/stats"), "vaka-sim", 120)
        for s in stacks:
            procs.wait_http(f"{s.base}/healthz")
            key = apis.principal(
                s, "bench-boka", str(uuid.uuid4()), "bookingsupplier-administrator-write"
            )
            with httpx.Client(base_url=s.base, timeout=60) as c:
                s.env["boka"] = apis.provision_bokamera(c, key, vaka_port)
        for s in stacks:
            assert s.proc is not None
            apis.reset_peak_rss(s.proc.pid)
            with httpx.Client(base_url=s.base, timeout=60) as c:
                s.sync = apis.sync(s, c, args.users)
            base = apis.bare(bare_urls[s.label], vaka_url)
            ratio = s.sync["seconds"] / base["seconds"]
            print(
                f"{s.label}: sync {s.sync['seconds']:.1f}s ({s.sync['users_per_s']:.0f} users/s), "
                f"bare {base['seconds']:.1f}s: {ratio:.2f}x; serve RSS first page "
                f"{s.sync['rss_first_page']:.0f} MB, max {s.sync['rss_max']:.0f} MB, "
                f"end {s.sync['rss_end']:.0f} MB",
                flush=True,
            )
            out[s.label] = {"writegate": s.sync, "bare": base, "ratio": ratio}
    out["load_at_end"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
