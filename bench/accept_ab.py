"""A/B of two `serve` settings under load: `python -m bench.accept_ab ROUNDS A B [sqlite,pg]
[worker]`.

A and B are JSON objects of environment variables for `writegate serve` (the real jef-one
module), e.g. '{}' '{"WRITEGATE_GIL_SWITCH_INTERVAL_MS": "5"}'. For each database, one
server per setting runs on its own fresh database (on PostgreSQL, `writegate_bench_ab_a`
and `writegate_bench_ab_b`, recreated), all at once with the bare FastAPI ceiling. Each
round runs `wrk -c32` for 3 s against every target in turn (the order reversed every other
round); the output is each round's req/s and, per target, the ratio to the ceiling in each
round and the median. `worker`: each server runs its embedded worker (`serve` as users run
it), which verifies every session job.
"""

from __future__ import annotations

import json
import statistics
import sys

from bench import procs, run
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
            if db == "pg":
                database = f"writegate_bench_ab_{name.lower()}"
                run.recreate_pg(database)
                url = f"{run.PG_BASE}/{database}"
            else:
                url = f"sqlite:///{run.TMP}/ab_{name}.db"
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
    rps: dict[str, list[float]] = {name: [] for name in targets}
    with procs.running(*(proc for proc, _ in targets.values())):
        for _, url in targets.values():
            procs.wait_http(url.rsplit("/", 1)[0] + "/docs")
            run.wrk(url, 1, 32)
        names = list(targets)
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                rps[name].append(run.wrk(targets[name][1], SECONDS, 32)["rps"])
            print(r, {name: round(rps[name][-1]) for name in names}, flush=True)
    for name in names[1:]:
        ratios = [x / c for x, c in zip(rps[name], rps["ceiling"], strict=True)]
        each = " ".join(f"{x:.2f}" for x in ratios)
        print(f"{name:10} median ratio {statistics.median(ratios):.3f}  rounds {each}")


if __name__ == "__main__":
    main()
