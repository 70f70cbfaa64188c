"""Per-API benchmarks (`python -m bench --only apis`): each API's own endpoints against its ceiling.

One `writegate serve` per database (the embedded default: every module, embedded worker) and
the per-API ceiling (`bench/api_ceiling.py`: same request models, same responses, same body
limit, no database) run at once; every wrk target runs once per round against the ceiling,
SQLite and PostgreSQL in turn, so a figure and its baseline are seconds apart. The wrk Lua
scripts (bench/lua/) check every answer; any answer that is not a success is counted, shown
in the table and printed loudly. Then the BokaMera 100k-user sync against a bare script, and
the worker's and serve's memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench import memory, procs
from bench.run import PG_BASE, TMP, Bench, med, recreate_pg
from writegate.settings import ALL_MODULES

LUA = Path(__file__).resolve().parent / "lua"
PG_DB = "writegate_bench_apis"
MODULES = json.dumps(list(ALL_MODULES))
#: seconds per wrk run, and most rounds, whatever the other sections' options
MIN_SECONDS = 5
MAX_ROUNDS = 2
IKO_USERS = 4
IKO_PASSWORD = "bench-Passw0rd"
IKO_EMAILS = tuple(f"bench{i}@iko.example" for i in range(IKO_USERS))
#: the ABS client codes written to and read from (a reader's feed never grows during the runs)
ABS_CODES = ("BENCHW", "BENCHR")
ABS_READ_PACKAGES = 200
#: answers of a failed sync status, or a verified count, are polled this often
POLL = 0.2


@dataclass
class Stack:
    """One `writegate serve` on one database, and what the wrk scripts need from it."""

    label: str
    db_url: str
    proc: subprocess.Popen[bytes] | None = None
    base: str = ""
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    sync: dict[str, float] = field(default_factory=dict)
    #: variables `serve` and the CLI run with (an A/B's variant: another tree's PYTHONPATH)
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class Target:
    """One wrk figure: a script, its environment key, and whether it keeps per-connection state."""

    name: str
    script: str
    key: str
    stateful: bool
    extra: dict[str, str] = field(default_factory=dict)


TARGETS = (
    Target("jef-one accept (POST one-post-create-session-job)", "jef_one.lua", "jef", False),
    Target("Ikonomikal token + SS07 save (both counted)", "ikonomikal.lua", "iko", True),
    Target("ABS putDb create", "abs_put.lua", "abs_w", False, {"BENCH_MODE": "create"}),
    Target(
        "ABS putDb update (version of the last answer)",
        "abs_put.lua",
        "abs_w",
        True,
        {"BENCH_MODE": "update"},
    ),
    Target("ABS get", "abs_read.lua", "abs_r", False, {"BENCH_MODE": "get"}),
    Target("ABS getChanges (limit 100)", "abs_read.lua", "abs_r", False, {"BENCH_MODE": "changes"}),
    Target("BokaMera GET usersync/<Id>", "bokamera_status.lua", "boka", False),
)


# -- wrk ----------------------------------------------------------------------------------------


def wrk_script(
    base: str, script: str, seconds: float, connections: int, stateful: bool, env: dict[str, str]
) -> dict[str, Any]:
    """Run one wrk script; req/s, p50/p99 ms, and answers that were (not) a success."""
    path = TMP / f"apis-{script}"
    path.write_text((LUA / "common.lua").read_text() + (LUA / script).read_text())
    # Per-connection state needs one connection per wrk thread (Lua state is per thread).
    threads = connections if stateful else 2
    # A 10 s timeout: on this shared machine a slow answer is slow, not lost; one that takes
    # longer still counts as a failure (socket_errors).
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    cmd += ["--latency", "-s"]
    run_env = {**os.environ, "BENCH_RUN": uuid.uuid4().hex[:6], **env}
    out = subprocess.run(
        [*cmd, str(path), base], capture_output=True, text=True, check=True, env=run_env
    ).stdout

    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else 0.0

    def lat(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v

    sample = re.search(r"BENCH-SAMPLE (.*)", out)
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", out)
    return {
        "rps": num(r"Requests/sec:\s+([\d.]+)"),
        "p50": lat("50"),
        "p99": lat("99"),
        "ok": num(r"BENCH-OK (\d+)"),
        "bad": num(r"BENCH-BAD (\d+)"),
        "non2xx": num(r"Non-2xx or 3xx responses:\s+(\d+)"),
        "socket_errors": (sum(int(x) for x in errors.groups()) if errors else 0)
        + (int(timeouts.group(1)) if timeouts else 0),
        "sample": sample.group(1)[:300] if sample else "",
    }


# -- set-up -------------------------------------------------------------------------------------


def cli(stack: Stack, *args: str) -> str:
    """Run a `writegate` command on the stack's database; its standard output."""
    return subprocess.run(
        [sys.executable, *procs.CLI, *args],
        cwd=procs.ROOT,
        env=procs.env(
            WRITEGATE_DATABASE_URL=stack.db_url, WRITEGATE_MODULES=MODULES, **stack.variables
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def principal(stack: Stack, name: str, tenant: str, roles: str, *extra: str) -> str:
    """Create a principal with the CLI; its API key."""
    args = ("--name", name, "--tenant", tenant, "--roles", roles, "--json", *extra)
    key: str = json.loads(cli(stack, "principals", "create", *args))["api_key"]
    return key


def create_principals(stack: Stack, company: str) -> dict[str, str]:
    """Every bench principal and ABS client code, by CLI processes 4 at a time; the API keys."""
    iko_roles = "ikonomikal,ikonomikal:ss07"
    iko_attrs = ("--attr", "user_code=API01", "--attr", "group=FORAPIACCESS01")
    specs = {
        email: (email, f"30000{i:02d}", iko_roles, "--password", IKO_PASSWORD, *iko_attrs)
        for i, email in enumerate(IKO_EMAILS)
    }
    # abs:read/abs:write: roles the ABS module may require; harmless where it does not.
    specs |= {code: (f"bench-abs-{code}", code, "abs:read,abs:write") for code in ABS_CODES}
    specs["boka"] = ("bench-boka", company, "bookingsupplier-administrator-write")
    with ThreadPoolExecutor(4) as pool:
        keys = dict(
            zip(specs, pool.map(lambda a: principal(stack, *a), specs.values()), strict=True)
        )
        list(pool.map(lambda code: cli(stack, "abs", "add-client", code), ABS_CODES))
    return keys


def wait_until(check: Any, what: str, timeout: float = 60.0) -> Any:
    """Poll check() until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(POLL)
    raise RuntimeError(f"{what}: not within {timeout}s")


def provision_jef_one(c: httpx.Client) -> None:
    """Entity 1001 and its employee 00001, active, so every session job ends verified."""
    entity = {"entity_number": "1001", "entity_name": "Bench", "is_active": True}
    c.post("/one-entities-post-one", json=entity).raise_for_status()
    wait_until(
        lambda: c.get("/jef-one-get-entity-by-entity-number?entity_number=1001").json()["is_found"],
        "jef-one entity",
    )
    employee = {**entity, "employee_number": "00001", "employee_name": "Bench"}
    del employee["entity_name"]
    c.post("/one-employees-post-one", json=employee).raise_for_status()
    q = "/jef-one-get-employee-by-employee-number?entity_number=1001&employee_number=00001"
    wait_until(lambda: c.get(q).json()["can_continue"], "jef-one employee")


def provision_ikonomikal(stack: Stack, c: httpx.Client, sessions: int) -> dict[str, str]:
    """`sessions` logins spread over the IKO_EMAILS users; the wrk script's sessions file."""
    from writegate.modules.ikonomikal.routes import LOGIN_PATH

    def login(i: int) -> str:
        body = {"userID": IKO_EMAILS[i % IKO_USERS], "userPW": IKO_PASSWORD, "timeOffSet": -180}
        a = c.post(LOGIN_PATH, json=body).json()
        if a["rspPrc"]["rspID"] != 0:
            raise RuntimeError(f"ikonomikal login: {a}")
        return "\t".join((a["subsID"], a["intGID"], a["userID"], a["sessID"]))

    with ThreadPoolExecutor(4) as pool:
        lines = list(pool.map(login, range(sessions)))
    path = TMP / f"apis-sessions-{stack.label}.tsv"
    path.write_text("\n".join(lines) + "\n")
    return {"BENCH_SESSIONS": str(path)}


def provision_abs(c: httpx.Client, keys: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The writing and the reading client's wrk settings; packages for the reader to read."""
    write, read = ({"BENCH_KEY": keys[code], "BENCH_CLIENT": code} for code in ABS_CODES)
    ids = []
    body = {"client_code": read["BENCH_CLIENT"], "processing_date": "2021-10-30"}
    for _ in range(ABS_READ_PACKAGES):
        r = c.post("/model/package/putDb", json=body, headers={"x-api-key": read["BENCH_KEY"]})
        doc = r.json()
        if doc["status"] != "ok":
            raise RuntimeError(f"ABS putDb: {doc}")
        ids.append(str(doc["data"]["id"]))
    read["BENCH_IDS"] = ",".join(ids)
    return write, read


def ensure_bokamera_key() -> None:
    """A Fernet key for the Axema passwords of every serve started after (PostgreSQL has none)."""
    from writegate.modules.bokamera.crypto import KEY_ENV, new_key

    os.environ.setdefault(KEY_ENV, new_key())


def provision_bokamera(c: httpx.Client, key: str, vaka_port: int) -> dict[str, str]:
    """Vaka settings pointing at the simulator for the company of key."""
    settings = {"ApiEndpoint": "http://127.0.0.1", "ApiPort": vaka_port}
    settings |= {"Username": "vaka", "Password": "vaka"}
    r = c.post("/codelock/axema/settings", json=settings, headers={"x-api-key": key})
    r.raise_for_status()
    return {"BENCH_KEY": key}


def provision(stack: Stack, connections: int, vaka_port: int) -> None:
    """Everything the wrk scripts and the sync need, on one stack; set stack.env."""
    keys = create_principals(stack, str(uuid.uuid4()))
    with httpx.Client(base_url=stack.base, timeout=60) as c:
        provision_jef_one(c)
        stack.env["jef"] = {}
        stack.env["iko"] = provision_ikonomikal(stack, c, connections)
        stack.env["abs_w"], stack.env["abs_r"] = provision_abs(c, keys)
        stack.env["boka"] = provision_bokamera(c, keys["boka"], vaka_port)


# -- measurements -------------------------------------------------------------------------------


def reset_peak_rss(pid: int) -> None:
    """Start pid's VmHWM afresh (Linux clear_refs 5), so set-up peaks are not counted."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def vm_rss_mb(pid: int) -> float:
    """Current resident set (VmRSS) of pid."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sync(stack: Stack, c: httpx.Client, users: int) -> dict[str, float]:
    """Start the BokaMera sync, wait for Completed; users/s and RSS across the sync."""
    assert stack.proc is not None
    h = {"x-api-key": stack.env["boka"]["BENCH_KEY"]}
    t0 = time.perf_counter()
    r = c.post("/codelock/axema/usersync", headers=h)
    r.raise_for_status()
    sync_id = r.json()["Id"]
    rss: list[float] = []
    first_page_rss = float("nan")
    while True:
        doc = c.get(f"/codelock/axema/usersync/{sync_id}", headers=h).json()
        if "Status" not in doc:
            raise RuntimeError(f"BokaMera sync status: {doc}")
        rss.append(vm_rss_mb(stack.proc.pid))
        if doc["UsersFound"] and first_page_rss != first_page_rss:  # NaN: not set yet
            first_page_rss = rss[-1]
        if doc["Status"] >= 2:
            break
        if time.perf_counter() - t0 > 1800:
            raise RuntimeError("BokaMera sync: not finished within 30 min")
        time.sleep(POLL)
    seconds = time.perf_counter() - t0
    if doc["Status"] != 2 or doc["UsersCreated"] != users:
        raise RuntimeError(f"BokaMera sync did not create {users} customers: {doc}")
    stack.env["boka"]["BENCH_SYNC_ID"] = sync_id
    return {
        "seconds": seconds,
        "users_per_s": users / seconds,
        "rss_first_page": first_page_rss,
        "rss_max": max(rss),
        "rss_end": rss[-1],
    }


def bare(db_url: str, vaka: str) -> dict[str, float]:
    """The bare script (bench/bokamera_bare.py) in its own process."""
    page = os.environ.get("WRITEGATE_BOKAMERA_PAGE_SIZE", "200")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bokamera_bare",
            "--vaka",
            vaka,
            "--db",
            db_url,
            "--page-size",
            page,
        ],
        cwd=procs.ROOT,
        env=procs.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


@contextmanager
def jef_one_counts(stack: Stack, out: dict[str, float]) -> Iterator[None]:
    """Verified sessions gained while the block ran, and jef-one jobs still waiting after it."""
    engine = create_engine(stack.db_url.replace("postgresql://", "postgresql+psycopg://"))
    verified = text("SELECT count(*) FROM \"jef-one-sessions\" WHERE status = 'verified'")
    waiting = text(
        "SELECT count(*) FROM jobs WHERE kind = 'jef_one.create_session' "
        "AND status IN ('queued', 'running')"
    )

    def drain() -> float:
        """Wait for the queue to empty; seconds waited."""
        t0 = time.perf_counter()
        while True:
            with engine.connect() as conn:
                if not conn.scalar(waiting):
                    return time.perf_counter() - t0
            if time.perf_counter() - t0 > 300:
                raise RuntimeError("jef-one queue did not drain within 300s")
            time.sleep(POLL)

    try:
        drain()  # e.g. the warm-up's jobs: they must not count as this run's
        with engine.connect() as conn:
            before = conn.scalar(verified) or 0
        t0 = time.perf_counter()
        yield
        seconds = time.perf_counter() - t0
        with engine.connect() as conn:
            out["verified_per_s"] = ((conn.scalar(verified) or 0) - before) / seconds
            out["queue_end"] = conn.scalar(waiting) or 0
        # Drain what is left before the next target, so no run pays for another's backlog.
        out["drain_s"] = drain()
    finally:
        engine.dispose()


# -- the section --------------------------------------------------------------------------------


def apis(b: Bench, sync_users: int = 100_000, worker_jobs: int = 3000) -> None:
    """Run every per-API figure and add its rows to b."""
    seconds = max(MIN_SECONDS, b.duration)
    rounds = max(1, min(MAX_ROUNDS, b.repeat))
    conns = b.connections
    print(
        f"[apis] wrk {seconds}s runs x{rounds} rounds, {conns} connections; "
        f"BokaMera sync of {sync_users} users",
        flush=True,
    )
    for f in TMP.glob("apis-writegate.db*"):
        f.unlink()
    for f in TMP.glob("apis-bare.db*"):
        f.unlink()
    recreate_pg(PG_DB)
    stacks = [
        Stack("SQLite", f"sqlite:///{TMP}/apis-writegate.db"),
        Stack("PostgreSQL", f"{PG_BASE}/{PG_DB}"),
    ]
    bare_urls = {"SQLite": f"sqlite:///{TMP}/apis-bare.db", "PostgreSQL": stacks[1].db_url}
    ceiling_port, vaka_port = procs.free_port(), procs.free_port()
    ceiling = procs.spawn(
        [
            "-m",
            "uvicorn",
            "bench.api_ceiling:app",
            "--port",
            str(ceiling_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    )
    vaka = procs.spawn(
        [*procs.CLI, "vaka-sim", "--users", str(sync_users), "--port", str(vaka_port)],
        WRITEGATE_MODULES=MODULES,
    )
    ensure_bokamera_key()
    for s in stacks:
        port = procs.free_port()
        s.base = f"http://127.0.0.1:{port}"
        s.proc = procs.writegate_serve(s.db_url, port, worker=True, WRITEGATE_MODULES=MODULES)
    servers = [ceiling, vaka, *(s.proc for s in stacks if s.proc)]
    ceiling_base = f"http://127.0.0.1:{ceiling_port}"
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with procs.running(*servers):
        procs.wait_http(f"{ceiling_base}/docs")
        wait_until(lambda: answers(f"http://127.0.0.1:{vaka_port}/_sim/stats"), "vaka-sim", 120)
        for s in stacks:
            procs.wait_http(f"{s.base}/healthz")
            t0 = time.monotonic()
            provision(s, conns, vaka_port)
            print(f"  {s.label}: provisioned in {time.monotonic() - t0:.1f}s", flush=True)
            # Peak RSS from here on: the logins' argon2 (64 MiB each) are set-up, not serving.
            if s.proc:
                reset_peak_rss(s.proc.pid)

        # BokaMera: the 100k sync on each database, each next to the bare script on the same kind.
        bare_runs: dict[str, dict[str, float]] = {}
        for s in stacks:
            with httpx.Client(base_url=s.base, timeout=60) as c:
                s.sync = sync(s, c, sync_users)
            bare_runs[s.label] = bare(bare_urls[s.label], f"http://127.0.0.1:{vaka_port}")
            print(
                f"  {s.label}: sync {s.sync['seconds']:.1f}s, bare script "
                f"{bare_runs[s.label]['seconds']:.1f}s",
                flush=True,
            )

        sides = [("ceiling", ceiling_base, stacks[0].env)] + [
            (s.label, s.base, s.env) for s in stacks
        ]
        for t in TARGETS:  # warm-up, not counted
            for _, base, env in sides:
                wrk_script(base, t.script, 1, conns, t.stateful, {**env[t.key], **t.extra})
        for _ in range(rounds):
            for t in TARGETS:
                for label, base, env in sides:
                    result: dict[str, Any] = {}
                    stack = next((s for s in stacks if s.label == label), None)
                    run_env = {**env[t.key], **t.extra}
                    if t.key == "jef" and stack is not None:
                        with jef_one_counts(stack, result):
                            result |= wrk_script(
                                base, t.script, seconds, conns, t.stateful, run_env
                            )
                    else:
                        result = wrk_script(base, t.script, seconds, conns, t.stateful, run_env)
                    runs.setdefault((t.name, label), []).append(result)
        ceiling_rss = procs.peak_rss_mb(ceiling)
        serve_rss = {s.label: procs.peak_rss_mb(s.proc) for s in stacks if s.proc}

    def col(target: str, side: str, key: str) -> list[float]:
        return [float(r[key]) for r in runs[(target, side)]]

    failures = []
    for (target, side), rs in runs.items():
        for r in rs:
            if r["bad"] or r["non2xx"] or r["socket_errors"] or not r["ok"]:
                failures.append((target, side, r))
    for t in TARGETS:
        c_rps, c_p99 = col(t.name, "ceiling", "rps"), col(t.name, "ceiling", "p99")
        for s in stacks:
            rps, p99 = col(t.name, s.label, "rps"), col(t.name, s.label, "p99")
            goal = ">= 0.85" if t.key == "jef" else ">= 0.6"
            b.add(f"{t.name}, {s.label}", rps, "req/s", "ceiling", c_rps, goal, paired=True)
            b.add(f"  p99, {s.label}", p99, "ms", "ceiling p99", c_p99, "<= 3")
            if t.key == "jef":
                verified = col(t.name, s.label, "verified_per_s")
                b.add(
                    f"jef-one accept-to-verified, {s.label}",
                    verified,
                    "/s",
                    "ceiling req/s",
                    c_rps,
                    ">= 0.4",
                    paired=True,
                )
                accepted = [r * seconds for r in rps]
                b.add(
                    f"  jef-one queue at end of run, {s.label}",
                    col(t.name, s.label, "queue_end"),
                    "jobs",
                    "accepted in run",
                    accepted,
                    "(0: kept up)",
                )
                b.notes[f"apis_jef_one_drain_s_{s.label}"] = col(t.name, s.label, "drain_s")
    for s in stacks:
        base = bare_runs[s.label]
        b.add(
            f"BokaMera {sync_users} users sync time, {s.label}",
            [s.sync["seconds"]],
            "s",
            "bare script",
            [base["seconds"]],
            "<= 1.5",
        )
        b.add(
            f"  sync users/s, {s.label}",
            [s.sync["users_per_s"]],
            "/s",
            "bare script",
            [base["users_per_s"]],
            "(higher is better)",
        )
        b.add(
            f"  serve RSS peak during sync, {s.label}",
            [s.sync["rss_max"]],
            "MB",
            "RSS at first page",
            [s.sync["rss_first_page"]],
            "~1.0 (flat)",
        )
        b.add(
            f"peak RSS, serve (every module) after set-up, {s.label}",
            [serve_rss[s.label]],
            "MB",
            "ceiling uvicorn",
            [ceiling_rss],
            "<= 1.3",
        )
        b.notes[f"apis_bokamera_{s.label}"] = {"writegate": s.sync, "bare": base}
    print(f"[apis] worker memory: {worker_jobs} one-row jobs each", flush=True)
    wg_mb, pro_mb = memory.worker_vs_procrastinate(worker_jobs)
    b.add(
        "peak RSS, writegate worker (every module)",
        [wg_mb],
        "MB",
        "procrastinate worker",
        [pro_mb],
        "<= 1.2",
    )
    answered = sum(r["ok"] + r["bad"] for rs in runs.values() for r in rs)
    bad = sum(r["bad"] + r["socket_errors"] for rs in runs.values() for r in rs)
    b.add("answers that were not a success (every API run)", [bad], "", "answers", [answered], "0")
    b.notes["apis_runs"] = {f"{t} | {side}": rs for (t, side), rs in runs.items()}
    b.notes["apis_ok_median"] = {
        f"{t} | {side}": med([r["ok"] for r in rs]) for (t, side), rs in runs.items()
    }
    if failures:
        b.notes["apis_failures"] = [{"target": t, "side": s, **r} for t, s, r in failures]
        print("\n" + "!" * 78, flush=True)
        print(f"!!! FAILURE: {len(failures)} wrk runs had answers that were not a success:")
        for t, s, r in failures:
            print(
                f"!!!   {t} [{s}]: {int(r['bad'])} bad, {int(r['non2xx'])} non-2xx, "
                f"{int(r['socket_errors'])} socket errors, {int(r['ok'])} ok; {r['sample']}"
            )
        print("!" * 78 + "\n", flush=True)


def answers(url: str) -> bool:
    """Whether url answers 200 now."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
