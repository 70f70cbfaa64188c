"""Peak RSS (VmHWM) of `writegate serve` and `writegate worker`; no timings.

    python -m bench.memory [--posts N] [--jobs N] [--only serve,bench-serve,worker,peers]

serve: the embedded default (every module, SQLite file in a new temporary directory, so
the first start migrates; embedded worker), idle, after N jef-one POSTs from 32 concurrent
clients, after GET /openapi.json, then after 64 ikonomikal logins from 32 clients (each
password check is an argon2 hash with its 64 MiB memory_cost).
bench-serve: serve as the accept benchmark starts it (--no-worker, jef_one and the bench
module) on SQLite and PostgreSQL, after N POSTs to each of its three endpoints.
worker: two `writegate worker` processes on PostgreSQL draining N no-op and N one-row jobs.
peers: one `writegate worker` (every module loaded) and one procrastinate worker, each
draining N one-row jobs on PostgreSQL, one after the other (also a figure of `--only apis`).
PostgreSQL is the database `writegate_mem` next to BENCH_PG_ADMIN_URL (created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench import procs

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_URL = f"{PG_ADMIN.rsplit('/', 1)[0]}/writegate_mem"
JEF_ONE = "/one-post-create-session-job"
BENCH_PATHS = (
    JEF_ONE,
    "/bench/one-post-create-session-job",
    "/bench/single/one-post-create-session-job",
)


def status(pid: int) -> dict[str, float]:
    """VmHWM and VmRSS of pid in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    out = {}
    for key in ("VmHWM", "VmRSS"):
        m = re.search(rf"^{key}:\s+(\d+)", text, re.M)
        out[key] = int(m.group(1)) / 1024 if m else float("nan")
    return out


def line(label: str, pid: int) -> None:
    """Print one figure line."""
    s = status(pid)
    print(f"  {label:<52} peak {s['VmHWM']:6.1f} MB   now {s['VmRSS']:6.1f} MB", flush=True)


async def _posts(base: str, path: str, n: int, clients: int = 32) -> int:
    run = uuid.uuid4().hex[:12]
    todo = iter(range(n))
    bad = 0

    async def one_client(client: httpx.AsyncClient) -> None:
        nonlocal bad
        for i in todo:
            body = {
                "entity_number": "1001",
                "employee_number": "00001",
                "session_id": f"s-{run}-{i}",
                "app_type": "mobile",
                "app_number": "001",
            }
            try:
                r = await client.post(path, json=body)
            except httpx.TransportError:
                bad += 1
                continue
            bad += r.status_code >= 300

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        await asyncio.gather(*(one_client(client) for _ in range(clients)))
    return bad


def posts(base: str, path: str, n: int) -> None:
    """N POSTs of the accept payload to path; complain about any non-2xx answer."""
    bad = asyncio.run(_posts(base, path, n))
    if bad:
        print(f"  ({bad} of {n} POSTs to {path} were not 2xx)", flush=True)


def _env(**extra: str) -> dict[str, str]:
    """This environment without WRITEGATE_* variables, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRITEGATE_")}
    env["PYTHONPATH"] = f"{procs.ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env["WRITEGATE_LOG_LEVEL"] = "warning"
    return {**env, **extra}


def spawn_serve(cwd: str, port: int, args: list[str], **extra: str) -> subprocess.Popen[bytes]:
    """`writegate serve` in cwd with only the given WRITEGATE_* variables."""
    return subprocess.Popen(
        [sys.executable, *procs.CLI, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=_env(**extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def serve_default(n: int) -> None:
    """The embedded default: every module, SQLite in the working directory, embedded worker."""
    print(f"[serve] embedded default, {n} jef-one POSTs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        port = procs.free_port()
        base = f"http://127.0.0.1:{port}"
        p = spawn_serve(tmp, port, [])
        user = ["principals", "create", "--name", "bench-user", "--tenant", "bench"]
        user += ["--roles", "ikonomikal", "--password", "bench-password"]
        with procs.running(p):
            procs.wait_http(f"{base}/healthz")
            time.sleep(2)
            line("serve idle (SQLite, embedded worker)", p.pid)
            posts(base, JEF_ONE, n)
            time.sleep(3)  # the embedded worker runs the accepted jobs
            line(f"serve after {n} POSTs", p.pid)
            httpx.get(f"{base}/openapi.json", timeout=60).raise_for_status()
            line("serve after GET /openapi.json", p.pid)
            cmd = [sys.executable, *procs.CLI, *user]
            subprocess.run(cmd, cwd=tmp, env=_env(), check=True, capture_output=True)
            asyncio.run(_logins(base, 64, 32))
            line("serve after 64 logins, 32 at once", p.pid)


async def _logins(base: str, n: int, clients: int) -> None:
    from writegate.modules.ikonomikal.routes import LOGIN_PATH

    todo = iter(range(n))

    async def one_client(client: httpx.AsyncClient) -> None:
        for i in todo:
            name = "bench-user" if i % 2 else "nobody"  # known and unknown names cost the same
            body = {"userID": name, "userPW": "bench-password"}
            (await client.post(LOGIN_PATH, json=body)).raise_for_status()

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=300) as client:
        await asyncio.gather(*(one_client(client) for _ in range(clients)))


def recreate_pg() -> None:
    """Drop and create the scratch PostgreSQL database."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute('DROP DATABASE IF EXISTS "writegate_mem" WITH (FORCE)')
        c.execute('CREATE DATABASE "writegate_mem"')


def drop_pg() -> None:
    """Drop the scratch PostgreSQL database."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute('DROP DATABASE IF EXISTS "writegate_mem" WITH (FORCE)')


def serve_bench(n: int) -> None:
    """serve as the accept benchmark runs it, on SQLite and PostgreSQL."""
    from bench.run import writegate_services

    print(f"[bench-serve] --no-worker, jef_one + bench module, {n} POSTs per endpoint", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        recreate_pg()
        for label, url in (("SQLite", f"sqlite:///{tmp}/writegate.db"), ("PostgreSQL", PG_URL)):
            writegate_services(url).close()
            port = procs.free_port()
            base = f"http://127.0.0.1:{port}"
            p = spawn_serve(
                tmp,
                port,
                ["--no-worker"],
                WRITEGATE_DATABASE_URL=url,
                WRITEGATE_MODULES=json.dumps(["jef_one", "bench.noop_module"]),
            )
            with procs.running(p):
                procs.wait_http(f"{base}/docs")
                line(f"serve idle ({label})", p.pid)
                for path in BENCH_PATHS:
                    posts(base, path, n)
                line(f"serve after {len(BENCH_PATHS)}x{n} POSTs ({label})", p.pid)
        drop_pg()


def worker(n: int) -> None:
    """Two workers on PostgreSQL draining n no-op jobs, then n one-row jobs."""
    from sqlalchemy import func, select

    from bench.run import fill_writegate, reset_writegate, writegate_services
    from writegate.core.jobs import JobRow

    print(f"[worker] 2 workers on PostgreSQL, {n} no-op then {n} one-row jobs", flush=True)
    recreate_pg()
    svc = writegate_services(PG_URL)
    try:
        for kind in ("bench.noop", "bench.row"):
            reset_writegate(svc)
            fill_writegate(svc, kind, n)
            ps = [procs.writegate_worker(PG_URL, BENCH_MARKS=os.devnull) for _ in range(2)]
            with procs.running(*ps):
                time.sleep(1)
                line("worker idle-ish (start-up)", ps[0].pid)
                deadline = time.monotonic() + 300
                done = 0
                while done < n and time.monotonic() < deadline:
                    time.sleep(0.2)
                    with svc.db.read() as s:
                        q = select(func.count()).select_from(JobRow)
                        done = s.scalar(q.where(JobRow.status == "succeeded")) or 0
                for i, p in enumerate(ps):
                    line(f"worker {i + 1} after {done}/{n} {kind} jobs", p.pid)
    finally:
        svc.close()
        drop_pg()


def worker_vs_procrastinate(n: int) -> tuple[float, float]:
    """Peak RSS (MB) of a writegate worker and a procrastinate worker, n one-row jobs each."""
    from sqlalchemy import func, select

    from bench.peers.procrastinate_app import app as papp
    from bench.peers.procrastinate_app import row
    from bench.run import fill_writegate, peer_rows, peer_setup, writegate_services
    from writegate.core.jobs import JobRow
    from writegate.settings import ALL_MODULES

    recreate_pg()
    svc = writegate_services(PG_URL)
    try:
        fill_writegate(svc, "bench.row", n)
        # The worker an operator runs: every bundled module, plus the bench job kinds.
        modules = json.dumps([*ALL_MODULES, "bench.noop_module"])
        wg = procs.writegate_worker(PG_URL, BENCH_MARKS=os.devnull, WRITEGATE_MODULES=modules)
        with procs.running(wg):
            deadline = time.monotonic() + 300
            done = 0
            while done < n and time.monotonic() < deadline:
                time.sleep(0.2)
                with svc.db.read() as s:
                    q = select(func.count()).select_from(JobRow)
                    done = s.scalar(q.where(JobRow.status == "succeeded")) or 0
            wg_mb = procs.peak_rss_mb(wg)
        if done < n:
            raise RuntimeError(f"writegate worker: {done} of {n} jobs succeeded")
    finally:
        svc.close()
        drop_pg()
    peer_setup()
    with papp.open():
        for start in range(0, n, 1000):
            count = min(1000, n - start)
            row.batch_defer(
                *({"session_id": f"s-{start + i}", "entity_number": "1001"} for i in range(count))
            )
    app_path = "bench.peers.procrastinate_app.app"
    pro = procs.spawn(["-m", "procrastinate", "--app", app_path, "worker", "-c", "4"])
    with procs.running(pro):
        deadline = time.monotonic() + 300
        while peer_rows() < n and time.monotonic() < deadline:
            time.sleep(0.2)
        pro_mb = procs.peak_rss_mb(pro)
    if peer_rows() < n:
        raise RuntimeError(f"procrastinate: {peer_rows()} of {n} jobs ran")
    return wg_mb, pro_mb


def peers(n: int) -> None:
    """Print the writegate worker's and procrastinate's peak RSS after n one-row jobs each."""
    print(f"[peers] one worker each on PostgreSQL, {n} one-row jobs", flush=True)
    wg_mb, pro_mb = worker_vs_procrastinate(n)
    print(f"  {'writegate worker (every module)':<52} peak {wg_mb:6.1f} MB", flush=True)
    print(f"  {'procrastinate worker (-c 4)':<52} peak {pro_mb:6.1f} MB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    ap.add_argument("--posts", type=int, default=3000, help="POSTs per endpoint")
    ap.add_argument("--jobs", type=int, default=3000, help="jobs per drain")
    ap.add_argument("--only", default="serve,bench-serve,worker,peers")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if "serve" in only:
        serve_default(args.posts)
    if "bench-serve" in only:
        serve_bench(args.posts)
    if "worker" in only:
        worker(args.jobs)
    if "peers" in only:
        peers(args.jobs)


if __name__ == "__main__":
    main()
