"""`serve`'s memory step by step: `python -m bench.rss_steps [sqlite|pg] [USERS] [ROUNDS]`.

Starts `serve` as `--only apis` does (every module, the embedded worker, `writegate vaka-sim`
with USERS users, default 2,000) and prints its VmRSS after start-up, after the per-API
provisioning, after a BokaMera sync, and after each per-API target's 5 s wrk run, ROUNDS
times (default 2). `serve` sees this environment: `MALLOC_ARENA_MAX=2`, or
`PYTHONPATH=<another tree>/src:.` to measure another build.
"""

from __future__ import annotations

import sys

import httpx

from bench import apis, procs
from bench.memory import status
from bench.run import PG_BASE, TMP, recreate_pg


def main() -> None:
    """Run the steps."""
    args = sys.argv[1:]
    db = args[0] if args else "sqlite"
    users = int(args[1]) if len(args) > 1 else 2000
    rounds = int(args[2]) if len(args) > 2 else 2
    if db == "pg":
        recreate_pg("writegate_rss_steps")
        stack = apis.Stack("PostgreSQL", f"{PG_BASE}/writegate_rss_steps")
    else:
        TMP.mkdir(parents=True, exist_ok=True)
        for f in TMP.glob("rss-steps.db*"):
            f.unlink()
        stack = apis.Stack("SQLite", f"sqlite:///{TMP}/rss-steps.db")
    vaka_port, port = procs.free_port(), procs.free_port()
    vaka = procs.spawn(
        [*procs.CLI, "vaka-sim", "--users", str(users), "--port", str(vaka_port)],
        WRITEGATE_MODULES=apis.MODULES,
    )
    apis.ensure_bokamera_key()
    stack.base = f"http://127.0.0.1:{port}"
    serve = procs.writegate_serve(stack.db_url, port, worker=True, WRITEGATE_MODULES=apis.MODULES)
    stack.proc = serve

    def show(step: str) -> None:
        print(f"  {step:<48} VmRSS {status(serve.pid)['VmRSS']:6.1f} MB", flush=True)

    with procs.running(vaka, serve):
        apis.wait_until(lambda: apis.answers(f"http://127.0.0.1:{vaka_port}/_sim/stats"), "vaka")
        procs.wait_http(f"{stack.base}/healthz")
        show("started")
        apis.provision(stack, 32, vaka_port)
        show("provisioned")
        with httpx.Client(base_url=stack.base, timeout=60) as c:
            apis.sync(stack, c, users)
        show(f"synced {users} Vaka users")
        for r in range(rounds):
            for t in apis.TARGETS:
                env = {**stack.env[t.key], **t.extra}
                rps = apis.wrk_script(stack.base, t.script, 5, 32, t.stateful, env)["rps"]
                show(f"round {r + 1}: {t.name[:30]} ({rps:.0f} req/s)")


if __name__ == "__main__":
    main()
