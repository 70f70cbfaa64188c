"""A/B of two `serve` settings on one per-API target: `python -m bench.api_ab ROUNDS A B
TARGET [sqlite,pg]`.

TARGET is one of `jef`, `iko`, `abs_create`, `abs_update`, `abs_get`, `abs_changes`: the
wrk script and provisioning of that figure of `--only apis` (BokaMera's status needs a
finished sync; it is left to `--only apis`). A and B are JSON objects of environment
variables for `writegate serve` (every module, its embedded worker on, as `--only apis`
runs it), e.g. '{}' '{"PYTHONPATH": "/tmp/exp/src:."}' to measure a second working tree
against this one. For each database, one server per setting on its own fresh database
(on PostgreSQL `writegate_bench_api_ab_a` and `_b`, recreated) and the per-API ceiling run
all at once; each round runs the target's script for 4 s against every one in turn (the
order reversed every other round), every answer checked. It prints each round's req/s and,
per server, the median of its ratios to the ceiling.
"""

from __future__ import annotations

import json
import sys
import uuid

import httpx

from bench import ab, apis, procs, run

SECONDS = 4
CONNECTIONS = 32
#: TARGET -> the `--only apis` figure it runs
TARGETS = {
    "jef": apis.TARGETS[0],
    "iko": apis.TARGETS[1],
    "abs_create": apis.TARGETS[2],
    "abs_update": apis.TARGETS[3],
    "abs_get": apis.TARGETS[4],
    "abs_changes": apis.TARGETS[5],
}


def provision(stack: apis.Stack, target: apis.Target) -> dict[str, str]:
    """What the target's script needs on one running server; its environment."""
    keys = apis.create_principals(stack, str(uuid.uuid4()))
    with httpx.Client(base_url=stack.base, timeout=60) as c:
        if target.key == "jef":
            apis.provision_jef_one(c)
            return {**target.extra}
        if target.key == "iko":
            return {**apis.provision_ikonomikal(stack, c, CONNECTIONS), **target.extra}
        write, read = apis.provision_abs(c, keys)
        return {**(write if target.key == "abs_w" else read), **target.extra}


def main() -> None:
    """Run the A/B."""
    if len(sys.argv) < 5 or sys.argv[4] not in TARGETS:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    variants = {"A": json.loads(sys.argv[2]), "B": json.loads(sys.argv[3])}
    target = TARGETS[sys.argv[4]]
    dbs = sys.argv[5].split(",") if len(sys.argv) > 5 else ["sqlite", "pg"]
    run.TMP.mkdir(parents=True, exist_ok=True)
    apis.ensure_bokamera_key()
    port = procs.free_port()
    ceiling = procs.spawn(
        ["-m", "uvicorn", "bench.api_ceiling:app", "--port", str(port), "--log-level", "warning"]
    )
    bases = {"ceiling": f"http://127.0.0.1:{port}"}
    stacks: dict[str, apis.Stack] = {}
    for db in dbs:
        for name, env in variants.items():
            url = ab.fresh_url(db, "writegate_bench_api_ab", name)
            stack = apis.Stack(f"{db}-{name}", url, variables=env)
            p = procs.free_port()
            stack.base = bases[stack.label] = f"http://127.0.0.1:{p}"
            stack.proc = procs.writegate_serve(
                url, p, worker=True, WRITEGATE_MODULES=apis.MODULES, **env
            )
            stacks[stack.label] = stack
    servers = [ceiling, *(s.proc for s in stacks.values() if s.proc)]
    with procs.running(*servers):
        procs.wait_http(f"{bases['ceiling']}/docs")
        envs: dict[str, dict[str, str]] = {}
        for label, stack in stacks.items():
            procs.wait_http(f"{stack.base}/healthz")
            envs[label] = provision(stack, target)
        # The ceiling answers any client code, key and session: any server's settings do.
        envs["ceiling"] = next(iter(envs.values()))

        def one(label: str) -> float:
            got = apis.wrk_script(
                bases[label], target.script, SECONDS, CONNECTIONS, target.stateful, envs[label]
            )
            if got["bad"] or got["non2xx"] or got["socket_errors"]:
                raise RuntimeError(f"{label}: answers that were not a success: {got}")
            return float(got["rps"])

        for label in bases:  # warm-up, not counted
            one(label)
        rps = ab.alternate(rounds, list(bases), one)
    print(f"{target.name}, {rounds} rounds of {SECONDS} s, {CONNECTIONS} connections")
    ab.print_ratios(rps)


if __name__ == "__main__":
    main()
