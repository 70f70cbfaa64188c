"""Short jobs: claimed together, run and finished inside the group commit, each in isolation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select, text

from tests.harness import hold_group_commit, uid, wait_for
from tests.system.conftest import core_services
from writegate.core.exceptions import LeaseLost, PermanentJobError
from writegate.core.jobs import FINAL, RetryPolicy, Status, Successes
from writegate.core.jobs.table import JOBS
from writegate.core.services import Services
from writegate.core.worker import JobContext, JobSpec, Worker
from writegate.core.worker.short import KindBatch

scratch = MetaData()
rows = Table(
    "core_test_short_rows",
    scratch,
    Column("id", String(64), primary_key=True),
    Column("job_id", String(36)),
)


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, without any API module."""
    with core_services(db_url, scratch) as svc:
        yield svc


def _worker(services: Services, specs: list[JobSpec], **kw: Any) -> Worker:
    for spec in specs:
        services.registry.add(spec)
    worker = Worker(
        services.jobs,
        services.registry,
        wakeup=services.wakeup,
        poll_interval=kw.pop("poll_interval", 0.2),
        reaper_interval=0.3,
        **kw,
    )
    worker.start()
    return worker


def _enqueue(services: Services, kind: str, payloads: list[Any]) -> list[str]:
    with services.db.write() as s:
        return [
            services.jobs.enqueue(s, kind=kind, payload=p, tenant=uid("t-")).id for p in payloads
        ]


def _jobs(services: Services, ids: list[str]) -> dict[str, Any]:
    with services.db.read() as s:
        return {i: services.jobs.get(s, i) for i in ids}


def _wait_final(services: Services, ids: list[str]) -> None:
    wait_for(
        lambda: all(j.status.value in FINAL for j in _jobs(services, ids).values()), timeout=30
    )


def _rows(services: Services, job_ids: list[str]) -> dict[str, str]:
    with services.db.read() as s:
        found = s.execute(select(rows.c.job_id, rows.c.id).where(rows.c.job_id.in_(job_ids)))
        return {str(job_id): str(row_id) for job_id, row_id in found}


def test_short_jobs_commit_their_row_with_success_and_failures_stay_isolated(
    services: Services,
) -> None:
    kind = uid("core.short-")

    def handler(ctx: JobContext) -> Any:
        ctx.session.execute(insert(rows).values(id=uid("row-"), job_id=ctx.job.id))
        if ctx.payload["mode"] == "permanent":
            raise PermanentJobError("refused for good")
        if ctx.payload["mode"] == "flaky":
            raise RuntimeError("temporary trouble")
        return {"ok": ctx.payload["n"]}

    modes = ["ok"] * 30 + ["permanent", "flaky"]
    policy = RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_max=0.02)
    services.jobs.policies[kind] = policy  # max_attempts is fixed at enqueue time
    ids = _enqueue(services, kind, [{"mode": m, "n": i} for i, m in enumerate(modes)])
    worker = _worker(
        services, [JobSpec(kind, handler, policy=policy, short=True)], short_in_flight=8
    )
    try:

        def settled() -> bool:
            return all(
                j.status in (Status.SUCCEEDED, Status.FAILED) for j in _jobs(services, ids).values()
            )

        wait_for(settled, timeout=60)
    finally:
        worker.stop()
    jobs = _jobs(services, ids)
    written = _rows(services, ids)
    for job_id, mode in zip(ids, modes, strict=True):
        job = jobs[job_id]
        if mode == "ok":
            assert job.status is Status.SUCCEEDED
            assert job.result == {"ok": job.payload["n"]}
            assert job.attempts == 1
            assert job.lease_owner is None
            assert job_id in written
        else:
            assert job.status is Status.FAILED
            # The failing handler's own row was rolled back with its savepoint.
            assert job_id not in written
    assert jobs[ids[-2]].error == "refused for good"
    assert jobs[ids[-2]].attempts == 1
    assert jobs[ids[-1]].error == "temporary trouble"
    assert jobs[ids[-1]].attempts == 2


def test_short_jobs_share_the_group_commit_with_api_writes(services: Services) -> None:
    """Claimed short jobs queue in the group commit: one COMMIT with a client's write, and a
    failing job's writes are rolled back alone while the client's write and the others commit."""
    kind = uid("core.g-")

    def handler(ctx: JobContext) -> Any:
        ctx.session.execute(insert(rows).values(id=uid("row-"), job_id=ctx.job.id))
        if ctx.payload.get("fail"):
            raise PermanentJobError("no")
        return "ran"

    ids = _enqueue(services, kind, [{}, {"fail": True}, {}])
    batches: list[int] = []
    services.db.group.on_batch = batches.append
    release, held = hold_group_commit(services.db.group)  # the rest queue behind it
    worker = _worker(services, [JobSpec(kind, handler, short=True)])
    try:
        if services.db.is_sqlite:
            # The worker's claim runs in the group commit too: it queues behind `hold`.
            wait_for(lambda: len(services.db.group.queued()) >= 1, timeout=30)
            assert {j.status for j in _jobs(services, ids).values()} == {Status.QUEUED}
        else:
            # PostgreSQL: the claim commits on its own (in a shared batch it deadlocked with
            # accepts); the claimed jobs' writes queue behind `hold`.
            wait_for(lambda: len(services.db.group.queued()) >= 3, timeout=30)
            assert {j.status for j in _jobs(services, ids).values()} == {Status.RUNNING}
        api_row = uid("api-")
        api = services.db.group.submit(
            lambda s: s.execute(insert(rows).values(id=api_row, job_id="api"))
        )
        release.set()
        held.result(30)
        api.result(30)
        _wait_final(services, ids)
    finally:
        release.set()
        worker.stop()
    if services.db.is_sqlite:
        # The claim shares one transaction with the client's write; the three jobs then share
        # one (with the worker's next claim, if it was due by then).
        assert batches[:2] == [1, 2]
        assert max(batches[2:]) >= 3
    else:
        assert batches[:2] == [1, 4]  # the three jobs and the client's write
    jobs = _jobs(services, ids)
    assert [jobs[i].status for i in ids] == [Status.SUCCEEDED, Status.FAILED, Status.SUCCEEDED]
    assert jobs[ids[0]].result == "ran"
    written = _rows(services, [*ids, "api"])
    assert set(written) == {ids[0], ids[2], "api"}
    assert written["api"] == api_row


def test_short_and_threaded_kinds_run_side_by_side(services: Services) -> None:
    short_kind, thread_kind = uid("core.s-"), uid("core.t-")
    seen: list[str] = []

    def threaded(ctx: JobContext) -> Any:
        # A threaded job may commit steps of its own; a short job may not.
        ctx.step(lambda s: ctx.save(s, progress={"step": 1}))
        seen.append(ctx.job.id)
        return "threaded"

    def short(ctx: JobContext) -> Any:
        try:
            ctx.step(lambda _s: None)
        except RuntimeError:
            return "no step in a short job"
        return "step allowed?"

    b_ids = _enqueue(services, short_kind, [{}] * 5)
    t_ids = _enqueue(services, thread_kind, [{}] * 5)
    worker = _worker(
        services, [JobSpec(short_kind, short, short=True), JobSpec(thread_kind, threaded)]
    )
    try:
        wait_for(
            lambda: all(
                j.status is Status.SUCCEEDED for j in _jobs(services, b_ids + t_ids).values()
            ),
            timeout=60,
        )
    finally:
        worker.stop()
    jobs = _jobs(services, b_ids + t_ids)
    assert {jobs[i].result for i in b_ids} == {"no step in a short job"}
    assert {jobs[i].result for i in t_ids} == {"threaded"}
    assert {jobs[i].progress["step"] for i in t_ids} == {1}
    assert sorted(seen) == sorted(t_ids)


def test_a_cancelled_job_is_not_run_as_a_short_job(services: Services) -> None:
    kind = uid("core.c-")
    ran: list[str] = []
    ids = _enqueue(services, kind, [{}] * 3)
    services.jobs.cancel(ids[1])

    def handler(ctx: JobContext) -> Any:
        ran.append(ctx.job.id)
        return None

    worker = _worker(services, [JobSpec(kind, handler, short=True)])
    try:
        wait_for(
            lambda: (
                _jobs(services, [ids[0], ids[2]])[ids[2]].status is Status.SUCCEEDED
                and _jobs(services, [ids[0]])[ids[0]].status is Status.SUCCEEDED
            ),
            timeout=60,
        )
    finally:
        worker.stop()
    assert sorted(ran) == sorted([ids[0], ids[2]])
    assert _jobs(services, [ids[1]])[ids[1]].status is Status.CANCELLED


def test_an_idle_worker_is_woken_by_a_commit_not_by_polling(services: Services) -> None:
    kind = uid("core.w-")
    # With an hour between polls, only the commit wake-up (in-process signal on SQLite,
    # LISTEN/NOTIFY on PostgreSQL) can get this job run before the wait below gives up.
    worker = _worker(services, [JobSpec(kind, lambda ctx: "woken", short=True)], poll_interval=3600)
    try:
        wait_for(lambda: worker._threads and all(t.is_alive() for t in worker._threads))
        if services.db.is_postgres:
            # Enqueue from a separate process-like Services: only NOTIFY can reach the worker.
            other = Services.build(services.settings)
            try:
                wait_for(lambda: _listening(services), timeout=30)
                ids = _enqueue(other, kind, [{}])
            finally:
                other.close()
        else:
            ids = _enqueue(services, kind, [{}])
        wait_for(lambda: _jobs(services, ids)[ids[0]].status is Status.SUCCEEDED, timeout=60)
    finally:
        worker.stop()
    assert _jobs(services, ids)[ids[0]].result == "woken"


def test_a_worker_listens_again_after_its_listen_connection_is_killed(
    services: Services,
) -> None:
    """PostgreSQL: the dispatcher reconnects its LISTEN socket; a NOTIFY still wakes it."""
    if not services.db.is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    kind = uid("core.l-")
    worker_id = uid("listen-")
    worker = _worker(
        services,
        [JobSpec(kind, lambda ctx: "again", short=True)],
        poll_interval=3600,
        worker_id=worker_id,
    )
    other = Services.build(services.settings)
    try:
        wait_for(lambda: _listeners(services, worker_id), timeout=30)
        [first] = _listeners(services, worker_id)
        with services.db.read() as s:
            s.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
        wait_for(lambda: _listeners(services, worker_id) not in ([], [first]), timeout=30)
        # With an hour between polls, only the new LISTEN connection can wake the worker.
        ids = _enqueue(other, kind, [{}])
        wait_for(lambda: _jobs(services, ids)[ids[0]].status is Status.SUCCEEDED, timeout=60)
    finally:
        other.close()
        worker.stop()
    assert _jobs(services, ids)[ids[0]].result == "again"


def _listeners(services: Services, worker_id: str | None = None) -> list[int]:
    """The backends LISTENing for this database's workers (or for one worker)."""
    name = f"writegate listen {worker_id}"[:63] if worker_id else "writegate listen %"
    with services.db.read() as s:
        return list(
            s.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query LIKE 'LISTEN %' AND application_name LIKE :name"
                ),
                {"name": name},
            )
        )


def _listening(services: Services) -> bool:
    return bool(_listeners(services))


def test_a_batch_kind_gets_the_jobs_of_a_batch_in_one_call_each_with_its_own_outcome(
    services: Services,
) -> None:
    """A batch kind's handler takes many jobs at once; a failed one fails alone."""
    kind = uid("core.batch-")
    calls: list[int] = []

    def handler(ctxs: list[JobContext]) -> list[Any]:
        calls.append(len(ctxs))
        ctxs[0].session.execute(
            insert(rows), [{"id": uid("row-"), "job_id": c.job.id} for c in ctxs]
        )
        return [
            PermanentJobError("refused") if c.payload["n"] == 7 else {"n": c.payload["n"]}
            for c in ctxs
        ]

    ids = _enqueue(services, kind, [{"n": i} for i in range(40)])
    worker = _worker(services, [JobSpec(kind, handler, short=True, batch=True)])
    try:
        wait_for(lambda: all(j.status in FINAL for j in _jobs(services, ids).values()), timeout=60)
    finally:
        worker.stop()
    assert max(calls) > 1, calls  # 40 jobs queued at once: claimed and run together
    jobs, written = _jobs(services, ids), _rows(services, ids)
    for n, job_id in enumerate(ids):
        if n == 7:
            assert jobs[job_id].status is Status.FAILED
            assert jobs[job_id].error == "refused"
            assert job_id not in written  # its part of the batch's write was rolled back
        else:
            assert jobs[job_id].status is Status.SUCCEEDED
            assert jobs[job_id].result == {"n": n}
            assert job_id in written


def _steal(services: Services, job_id: str) -> None:
    """The job's lease expired and another worker took the job."""
    with services.db.write() as s:
        s.execute(JOBS.update().where(JOBS.c.id == job_id).values(lease_owner="other"))


def _in_one_batch(services: Services, write: Any, items: dict[str, Any]) -> dict[str, Any]:
    """Queue each item of a batch write while the group commit is held, so they share a
    batch; each key's outcome: its result, or the type of the error it was refused with."""
    release, held = hold_group_commit(services.db.group)
    futures = {key: services.db.group.submit_many(write, item) for key, item in items.items()}
    release.set()
    held.result(timeout=30)
    return {
        key: type(f.exception(30)) if f.exception(30) is not None else f.result()
        for key, f in futures.items()
    }


def test_a_lease_lost_inside_a_batch_rolls_back_that_job_alone(services: Services) -> None:
    """One completion statement finishes a kind's batch; a job whose lease moved to another
    worker is told apart when the batch is replayed job by job, and only it is undone."""
    kind = uid("core.lease-")

    def handler(ctx: JobContext) -> Any:
        ctx.session.execute(insert(rows).values(id=uid("row-"), job_id=ctx.job.id))
        return "done"

    services.registry.add(JobSpec(kind, handler, short=True))
    ids = _enqueue(services, kind, [{}, {}, {}])
    claimed = services.jobs.claim("me", [kind], 3)
    assert sorted(j.id for j in claimed) == sorted(ids)
    stolen = claimed[1].id
    _steal(services, stolen)
    write = KindBatch(services.registry.get(kind), services.jobs, "me")
    outcomes = _in_one_batch(services, write, {job.id: job for job in claimed})
    assert outcomes == {j: LeaseLost if j == stolen else "done" for j in ids}
    jobs, written = _jobs(services, ids), _rows(services, ids)
    assert jobs[stolen].status is Status.RUNNING
    assert jobs[stolen].lease_owner == "other"
    assert stolen not in written
    for job_id in set(ids) - {stolen}:
        assert jobs[job_id].status is Status.SUCCEEDED
        assert job_id in written


def test_short_jobs_in_the_group_commit_keep_their_leases(services: Services) -> None:
    """Regression: the lease keeper renewed only jobs on handler threads, so short jobs that
    stayed in the group commit longer than a lease were taken back by the reaper and run
    again (until their attempts ran out). Now they are heartbeated until they settle."""
    kind = uid("core.wait-")
    runs: list[str] = []
    gate = threading.Event()

    def handler(ctx: JobContext) -> Any:
        gate.wait(30)  # the batch holds the group commit; the others wait behind it
        runs.append(ctx.job.id)
        ctx.session.execute(insert(rows).values(id=uid("row-"), job_id=ctx.job.id))
        return "done"

    ids = _enqueue(services, kind, [{}, {}, {}])
    worker = _worker(services, [JobSpec(kind, handler, short=True)])
    try:
        wait_for(lambda: len(worker.short.active()) == 3, timeout=30, interval=0.01)
        claimed = {i: j.lease_expires_at for i, j in _jobs(services, ids).items()}
        # Three leases: without the heartbeat the reaper takes the jobs back after one.
        time.sleep(services.jobs.lease_seconds * 3)
        renewed = {i: j.lease_expires_at for i, j in _jobs(services, ids).items()}
        gate.set()
        _wait_final(services, ids)
    finally:
        gate.set()
        worker.stop()
    assert all(renewed[i] > claimed[i] for i in ids), (claimed, renewed)
    jobs = _jobs(services, ids)
    assert {i: (j.status, j.attempts) for i, j in jobs.items()} == dict.fromkeys(
        ids, (Status.SUCCEEDED, 1)
    )
    assert sorted(runs) == sorted(ids)  # each ran once
    assert set(_rows(services, ids)) == set(ids)
    assert worker.short.active() == []


def test_a_heartbeat_skips_a_locked_job_without_calling_it_lost(services: Services) -> None:
    """PostgreSQL: the heartbeat skips a job row another transaction holds (a batch completing
    it) rather than wait for it, which could deadlock; the job still counts as held, and a job
    that another worker took does not."""
    if services.db.is_sqlite:
        pytest.skip("row locks are PostgreSQL's (SQLite has one writer)")
    kind = uid("core.beat-")
    ids = _enqueue(services, kind, [{}, {}])
    claimed = {j.id: j for j in services.jobs.claim("me", [kind], 2)}
    assert sorted(claimed) == sorted(ids)
    locked, taken = ids
    with services.db.write() as s:
        s.execute(JOBS.update().where(JOBS.c.id == taken).values(lease_owner="other"))
    with services.db.write() as s:
        s.execute(select(JOBS.c.id).where(JOBS.c.id == locked).with_for_update())
        owned = services.jobs.heartbeat("me", ids)  # its own transaction: it cannot wait here
        still = s.execute(select(JOBS.c.lease_expires_at).where(JOBS.c.id == locked)).scalar()
    assert owned == {locked}
    assert still == claimed[locked].lease_expires_at  # skipped, not extended
    assert services.jobs.heartbeat("me", ids) == {locked}
    assert _jobs(services, [locked])[locked].lease_expires_at > claimed[locked].lease_expires_at


def test_a_threaded_jobs_steps_and_success_share_the_group_commit(services: Services) -> None:
    """A threaded job's steps, and its success when it opened no transaction of its own, are
    group writes: on SQLite a commit of their own waited for the file's one writer lock,
    behind the API's batches (the load test's job threads spent most of their time there)."""
    kind = uid("core.steps-")
    gate = threading.Event()

    def handler(ctx: JobContext) -> Any:
        gate.wait(30)
        ctx.step(lambda s: ctx.save(s, progress={"step": 1}, checkpoint={"page": 2}))
        return "stepped"

    [job_id] = _enqueue(services, kind, [{}])
    worker = _worker(services, [JobSpec(kind, handler)])
    release = None
    try:
        wait_for(lambda: worker.running_jobs() == [job_id], timeout=30, interval=0.01)
        release, held = hold_group_commit(services.db.group)
        gate.set()
        # The step waits for the held batch: it is queued there, not committed on its own.
        wait_for(lambda: len(services.db.group.queued()) >= 1, timeout=30, interval=0.01)
        time.sleep(0.3)
        assert _jobs(services, [job_id])[job_id].progress is None
        release.set()
        held.result(30)
        _wait_final(services, [job_id])
    finally:
        gate.set()
        if release is not None:
            release.set()
        worker.stop()
    job = _jobs(services, [job_id])[job_id]
    assert (job.status, job.result, job.progress, job.attempts) == (
        Status.SUCCEEDED,
        "stepped",
        {"step": 1},
        1,
    )


def _gated_threaded_job(
    services: Services,
) -> tuple[str, Worker, threading.Event, threading.Event]:
    """One threaded job on a worker of one thread, its handler running and waiting for the
    gate: (job id, worker, gate, set once the handler has returned "ran")."""
    kind = uid("core.settle-")
    ran, gate = threading.Event(), threading.Event()

    def handler(ctx: JobContext) -> Any:
        gate.wait(30)
        ran.set()
        return "ran"

    [job_id] = _enqueue(services, kind, [{}])
    worker = _worker(services, [JobSpec(kind, handler)], concurrency=1)
    wait_for(lambda: worker.running_jobs() == [job_id], timeout=30, interval=0.001)
    return job_id, worker, gate, ran


def test_a_threaded_jobs_thread_does_not_wait_for_its_success_to_commit(
    services: Services,
) -> None:
    """Its slot is free once the handler returns; the job is settled (and counted) when its
    success commits, and its lease is kept meanwhile."""
    job_id, worker, gate, ran = _gated_threaded_job(services)
    release = None
    try:
        release, held = hold_group_commit(services.db.group)
        gate.set()
        assert ran.wait(30)
        wait_for(lambda: worker.running_jobs() == [], timeout=30, interval=0.01)
        # Its lease would have expired now; the lease keeper (every lease/3) renews it before
        # the reaper (every 0.3 s) could hand it to another attempt.
        services.clock.advance(timedelta(seconds=services.jobs.lease_seconds + 1))
        time.sleep(1.0)  # the success still waits behind the held batch
        job = _jobs(services, [job_id])[job_id]
        assert (job.status, job.attempts, job.lease_owner) == (
            Status.RUNNING,
            1,
            worker.worker_id,
        )
        assert worker.processed == 0
        release.set()
        held.result(30)
        _wait_final(services, [job_id])
        wait_for(lambda: worker.processed == 1, timeout=30, interval=0.01)
    finally:
        gate.set()
        if release is not None:
            release.set()
        worker.stop()
    job = _jobs(services, [job_id])[job_id]
    assert (job.status, job.result, job.attempts) == (Status.SUCCEEDED, "ran", 1)


def test_threaded_successes_share_one_write_and_a_lost_lease_fails_alone(
    services: Services,
) -> None:
    """Successes queued together are one completion statement; a job whose lease moved to
    another worker is told apart when the batch is replayed one by one."""
    kind = uid("core.successes-")
    services.registry.add(JobSpec(kind, lambda ctx: None))
    ids = _enqueue(services, kind, [{}, {}, {}])
    claimed = services.jobs.claim("me", [kind], 3)
    assert sorted(j.id for j in claimed) == sorted(ids)
    stolen = claimed[0].id
    _steal(services, stolen)
    successes = Successes(services.jobs, "me")
    batches: list[int] = []
    real = services.jobs.complete_many

    def counted(session: Any, done: Any, worker_id: str) -> bool:
        batches.append(len(done))
        return real(session, done, worker_id)

    services.jobs.complete_many = counted  # type: ignore[method-assign]
    items = {job.id: (job, {"n": i}, None) for i, job in enumerate(claimed)}
    outcomes = _in_one_batch(services, successes, items)
    assert outcomes == {j: LeaseLost if j == stolen else None for j in ids}
    assert batches[0] == 3, "the three successes were one write"
    jobs = _jobs(services, ids)
    assert (jobs[stolen].status, jobs[stolen].lease_owner) == (Status.RUNNING, "other")
    for i, job in enumerate(claimed[1:], start=1):
        assert (jobs[job.id].status, jobs[job.id].result) == (Status.SUCCEEDED, {"n": i})


def test_stop_waits_for_the_successes_still_in_the_group_commit(services: Services) -> None:
    """A handler that returned before stop() has its success committed when stop() returns."""
    job_id, worker, gate, ran = _gated_threaded_job(services)
    release, held = hold_group_commit(services.db.group)
    try:
        gate.set()
        assert ran.wait(30)
        wait_for(lambda: worker.running_jobs() == [], timeout=30, interval=0.01)
        threading.Timer(0.3, release.set).start()
        worker.stop(grace=10)
        assert _jobs(services, [job_id])[job_id].status is Status.SUCCEEDED
        assert worker.processed == 1
    finally:
        gate.set()
        release.set()
        held.result(30)
