"""A/B of two `serve` settings under load: `python -m bench.accept_ab ROUNDS A B [sqlite,pg]
[worker]`.

A and B are JSON objects of environment variables for `writegate serve` (the real jef-one
module), e.g. '{}' '{"WRITEGATE_GIL_SWITCH_INTERVAL_MS": "5"}'. For each database, one
server per setting runs on its own fresh database (on PostgreSQL, `writegate_bench_ab_a`
and `writegate_bench_ab_b`, recreated), all at once with the bare FastAPI ceiling. Each
round runs `wrk -c32` for 3 s against every target in turn (the order reversed every other
round); the output is each round's req/s and, per target, the ratio to the ceiling in each
round and the median; an answer that was not a success stops it. `worker`: each server
runs its embedded worker (`serve` as users run it), which verifies every session job.
"""

from __future__ import annotations

import json
import sys

from bench import ab, procs, run
from bench.accept_profile import MODULES, provision, start_ceiling
from writegate.modules import jef_one as jef_one_module

SECONDS = 3


def main() -> None:
    """Run the A/B."""
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    variants = {"A": json.loads(sys.argv[2]), "B": json.loads(sys.argv[3])}
    dbs = sys.argv[4].split(",") if len(sys.argv) > 4 else ["sqlite", "pg"]
    worker = sys.argv[5:6] == ["worker"]
    run.TMP.mkdir(parents=True, exist_ok=True)
    targets = {"ceiling": start_ceiling()}
    for db in dbs:
        for name, env in variants.items():
            url = ab.fresh_url(db, "writegate_bench_ab", name)
            svc = run.writegate_services(url, MODULES)
            jef_one_module.create_web(svc)
            run.reset_writegate(svc)
            provision(svc)
            svc.close()
            p = procs.free_port()
            server = procs.writegate_serve(
                url, p, worker=worker, WRITEGATE_MODULES=json.dumps(MODULES), **env
            )
            targets[f"{db}-{name}"] = (server, f"http://127.0.0.1:{p}{run.JEF_ONE_PATH}")

    def one(name: str) -> float:
        got = run.wrk(targets[name][1], SECONDS, 32)
        if got["non2xx"] or got["socket_errors"]:
            raise RuntimeError(f"{name}: answers that were not a success: {got}")
        return got["rps"]

    with procs.running(*(proc for proc, _ in targets.values())):
        for _, url in targets.values():
            procs.wait_http(url.rsplit("/", 1)[0] + "/docs")
            run.wrk(url, 1, 32)
        rps = ab.alternate(rounds, list(targets), one)
    ab.print_ratios(rps)


if __name__ == "__main__":
    main()
