"""Where a job's pickup time goes: `python -m bench.pickup_probe [pg|embedded] [N]`.

Starts a writegate worker (pg) or an embedded `serve` (embedded) whose wake-up path is
instrumented (public methods only), submits N single jobs 50 ms apart and prints each stage
in ms from the submit: committed/response (driver), set (Wakeup.set by the committing thread;
embedded only), wait-end (dispatcher awake), claim-start, claimed (`JobManager.claim`),
queued (the short job handed to the group commit, `GroupCommit.submit`), MARK (the handler
ran), committed (its group commit is durable).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

LOG_ENV = "PROBE_LOG"


def instrumented_cli() -> None:
    """Run the writegate CLI with timestamps on the wake-up path (child process)."""
    from writegate.core import db as d
    from writegate.core import jobs as j
    from writegate.core import worker as w

    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(tag: str) -> None:
        name = threading.current_thread().name
        os.write(fd, f"{time.time():.6f} {tag} {name}\n".encode())

    orig_set, orig_wait = w.Wakeup.set, w.Wakeup.wait
    orig_claim, orig_submit = j.JobManager.claim, d.GroupCommit.submit

    def set_(self: Any) -> None:
        log("set")
        orig_set(self)

    def wait(self: Any, timeout: float, fd: int | None = None) -> bool:
        woke = orig_wait(self, timeout, fd)
        log(f"wait-end {woke}")
        return woke

    def claim(self: Any, *a: Any, **k: Any) -> Any:
        log("claim-start")
        got = orig_claim(self, *a, **k)
        log(f"claimed {len(got)}")
        return got

    def submit(self: Any, fn: Any) -> Any:
        log("queued")
        future = orig_submit(self, fn)
        future.add_done_callback(lambda _f: log("committed"))
        return future

    w.Wakeup.set, w.Wakeup.wait = set_, wait  # type: ignore[method-assign]
    j.JobManager.claim, d.GroupCommit.submit = claim, submit  # type: ignore[method-assign]
    from writegate.cli import main

    main()


def main() -> None:
    """Drive one probe and print the stage timeline of every job."""
    from bench import marks, procs, run

    mode = sys.argv[1] if len(sys.argv) > 1 else "pg"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    run.TMP.mkdir(parents=True, exist_ok=True)
    log, mpath = run.TMP / "probe.log", run.TMP / "probe.marks"
    for f in (log, mpath):
        f.unlink(missing_ok=True)
    child = ["-c", "from bench.pickup_probe import instrumented_cli; instrumented_cli()"]
    extra = {"BENCH_MARKS": str(mpath), LOG_ENV: str(log)}
    if mode == "pg":
        url = f"{run.PG_BASE}/writegate_bench_probe"
        run.recreate_pg("writegate_bench_probe")
        svc = run.writegate_services(url)
        proc = procs.spawn([*child, "worker"], WRITEGATE_DATABASE_URL=url, **extra)
        time.sleep(4.0)

        def submit() -> None:
            svc.jobs.defer(kind="bench.noop", payload={}, tenant="bench")

    else:
        db = run.TMP / "probe.db"
        for f in run.TMP.glob("probe.db*"):
            f.unlink()
        url = f"sqlite:///{db}"
        svc = run.writegate_services(url)
        port = procs.free_port()
        proc = procs.spawn(
            [*child, "serve", "--port", str(port)], WRITEGATE_DATABASE_URL=url, **extra
        )
        procs.wait_http(f"http://127.0.0.1:{port}/docs")
        time.sleep(1.0)
        client = run.HttpClient(port)

        def submit() -> None:
            client.post("/bench/one-post-create-session-job", run.BODY % uuid.uuid4().hex)

    totals = []
    with procs.running(proc), log.open("a") as out:
        for i in range(count):
            t0 = time.time()
            submit()
            out.write(f"{t0:.6f} submit driver\n{time.time():.6f} submitted driver\n")
            out.flush()
            while marks.count(str(mpath)) <= i:
                time.sleep(0.0005)
            totals.append((marks.read(str(mpath))[i] - t0) * 1000)
            time.sleep(0.05)
    svc.close()
    timeline(log, mpath)
    totals.sort()
    print(
        f"{mode}: pickup p50 {totals[len(totals) // 2]:.2f} ms, max {totals[-1]:.2f} ms; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def timeline(log: Path, mpath: Path) -> None:
    """Print every event in ms since its job's submit."""
    events = [line.split(maxsplit=1) for line in log.read_text().splitlines()]
    events += [[line.strip(), "MARK handler"] for line in mpath.read_text().splitlines()]
    events.sort(key=lambda e: float(e[0]))
    start = None
    for stamp, what in events:
        if what.startswith("submit driver"):
            start = float(stamp)
            print()
        if start is not None:
            print(f"{(float(stamp) - start) * 1000:8.2f}  {what}")


if __name__ == "__main__":
    main()
