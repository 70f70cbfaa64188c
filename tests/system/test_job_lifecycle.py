"""Retries with backoff, permanent failure, timeouts of hung handlers, cancel and retry."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from tests.harness import Server, fresh_database, start_server, wait_for
from tests.system.conftest import effect_counts, enqueue_many
from writegate.core.exceptions import ExclusiveJobExists
from writegate.core.jobs import Job, NewJob, Status
from writegate.core.jobs.table import JOBS


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the testkit jobs, 3 attempts and a 1.5 s job timeout."""
    with fresh_database(str(tmp_path_factory.mktemp("kit"))) as url:
        srv = start_server(
            url,
            modules=["tests.testkit"],
            job_max_attempts=3,
            job_timeout_seconds=1.5,
            job_lease_seconds=0.6,
        )
        yield srv
        srv.stop()


def _final(server: Server, job_id: str) -> Job:
    def get() -> Job | None:
        with server.services.db.read() as s:
            job = server.services.jobs.get(s, job_id)
        assert job is not None
        return job if job.status not in (Status.QUEUED, Status.RUNNING) else None

    try:
        job: Job = wait_for(get, 60)
    except AssertionError:
        with server.services.db.read() as s:
            row = server.services.jobs.get(s, job_id)
        worker = server.app.state.worker
        threads = sorted(t.name for t in threading.enumerate())
        raise AssertionError(
            f"job {job_id} not final within 60 s at {server.services.clock.now()}: {row!r}; "
            f"worker {worker.state}, "
            f"running {worker.running_jobs()}, short {worker.short.active()}; threads {threads}"
        ) from None
    return job


def test_transient_failures_are_retried_then_succeed(kit: Server) -> None:
    """A handler failing twice succeeds on attempt 3, with one effect."""
    [job_id] = enqueue_many(kit, "testkit.flaky", 1, {"succeed_on": 3})
    job = _final(kit, job_id)
    assert job.status == Status.SUCCEEDED
    assert job.attempts == 3
    assert job.result == {"attempt": 3}
    assert effect_counts(kit).get(job_id) == 1


def test_exhausted_retries_fail_with_error_kept(kit: Server) -> None:
    """A handler that always raises ends failed after max attempts, keeping the error."""
    [job_id] = enqueue_many(kit, "testkit.broken", 1, {})
    job = _final(kit, job_id)
    assert job.status == Status.FAILED
    assert job.attempts == 3
    assert job.error == "always fails"
    assert job.finished_at is not None


def test_permanent_error_fails_at_once(kit: Server) -> None:
    """PermanentJobError is not retried."""
    [job_id] = enqueue_many(kit, "testkit.broken", 1, {"permanent": True})
    job = _final(kit, job_id)
    assert (job.status, job.attempts) == (Status.FAILED, 1)
    assert job.error == "bad data: cannot ever succeed"


def test_regression_a_database_error_is_kept_without_its_statement_or_values(
    kit: Server,
) -> None:
    """A handler's write the database refuses keeps only the error's kind and code: the
    error used to hold the statement and its values, and a job's error reaches API clients.
    A value too long for its column (PostgreSQL) is refused again each time: not retried."""
    secret = "s3cret-customer-data"
    [taken] = enqueue_many(kit, "testkit.clash", 1, {"id": 900_001, "worker": secret})
    job = _final(kit, taken)
    assert (job.status, job.attempts) == (Status.FAILED, 3)
    assert job.error in (
        "database error: UniqueViolation (23505)",
        "database error: IntegrityError (SQLITE_CONSTRAINT_PRIMARYKEY)",
    )
    if kit.services.db.is_postgres:
        [too_long] = enqueue_many(kit, "testkit.clash", 1, {"id": 900_002, "worker": "w" * 101})
        job = _final(kit, too_long)
        assert (job.status, job.attempts) == (Status.FAILED, 1)
        assert job.error == "database error: StringDataRightTruncation (22001)"


def test_hung_handler_times_out_and_fails(kit: Server) -> None:
    """A handler that never returns loses its lease at the timeout; after retries it fails."""
    [job_id] = enqueue_many(kit, "testkit.hang", 1, {"sleep": 3600})
    job = _final(kit, job_id)
    assert job.status == Status.FAILED
    assert job.attempts == 3
    assert job.error is not None
    assert job.error.startswith("job timed out")


def test_cancel_and_retry(kit: Server) -> None:
    """A queued job can be cancelled; a cancelled one retried; both are visible in status."""
    with kit.services.db.write() as s:
        job = kit.services.jobs.enqueue(
            s,
            kind="testkit.write",
            payload={},
            tenant="t",
            run_after=kit.services.clock.now().replace(year=2999),
        )
    cancelled = kit.services.jobs.cancel(job.id)
    assert cancelled is not None
    assert cancelled.status == Status.CANCELLED
    again = kit.services.jobs.retry(job.id)
    assert again is not None
    assert again.status == Status.QUEUED
    assert _final(kit, job.id).status == Status.SUCCEEDED
    assert effect_counts(kit).get(job.id) == 1


def test_exclusive_key_admits_one_active_job(kit: Server) -> None:
    """Fifty racing enqueues with one exclusive key: exactly one job, the rest told its id."""
    import concurrent.futures

    key = "exclusive-race"
    far = kit.services.clock.now().replace(year=2999)

    def enqueue(_: int) -> str:
        try:
            with kit.services.db.write() as s:
                job = kit.services.jobs.enqueue(
                    s,
                    kind="testkit.write",
                    payload={},
                    tenant="t",
                    exclusive_key=key,
                    run_after=far,
                )
            return f"ok:{job.id}"
        except ExclusiveJobExists as exc:
            return f"busy:{exc.job_id}"

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(enqueue, range(50)))
    winners = [o for o in outcomes if o.startswith("ok:")]
    assert len(winners) == 1, outcomes
    winner = winners[0][3:]
    assert all(o == f"busy:{winner}" for o in outcomes if o.startswith("busy:"))
    kit.services.jobs.cancel(winner)
    with kit.services.db.write() as s:  # released once the holder is no longer active
        kit.services.jobs.enqueue(
            s, kind="testkit.write", payload={}, tenant="t", exclusive_key=key
        )


def test_idempotency_key_returns_the_same_job(kit: Server) -> None:
    """Racing enqueues with one idempotency key yield one job; later ones get it back."""
    import concurrent.futures

    key = "idem-race"
    far = kit.services.clock.now().replace(year=2999)

    def enqueue(_: int) -> tuple[str, bool]:
        with kit.services.db.write() as s:
            job = kit.services.jobs.enqueue(
                s,
                kind="testkit.write",
                payload={"n": 1},
                tenant="t",
                idempotency_key=key,
                run_after=far,
            )
        return job.id, job.created

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(enqueue, range(20)))
    assert len({job_id for job_id, _ in outcomes}) == 1
    assert sum(created for _, created in outcomes) == 1
    with kit.services.db.write() as s:  # another tenant's key space is separate
        other = kit.services.jobs.enqueue(
            s, kind="testkit.write", payload={}, tenant="t2", idempotency_key=key, run_after=far
        )
    assert other.created
    assert other.id != outcomes[0][0]
    kit.services.jobs.cancel(other.id)
    kit.services.jobs.cancel(outcomes[0][0])


def test_commits_are_durable(kit: Server) -> None:
    """SQLite runs WAL with synchronous=FULL; PostgreSQL commits wait for the WAL flush."""
    with kit.services.db.engine.connect() as conn:
        if kit.services.db.is_sqlite:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() in (
                "on",
                "remote_apply",
                "remote_write",
            )
            assert conn.exec_driver_sql("SHOW fsync").scalar() == "on"


def test_only_a_claim_commits_without_waiting_for_the_flush(kit: Server) -> None:
    """`statement(flush=False)` (the claim's) skips the WAL flush wait on PostgreSQL only;
    every other write, on the same pool or not, still waits for it."""
    db = kit.services.db
    with db.statement(flush=False) as conn:
        if db.is_sqlite:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    if db.is_sqlite:
        return
    with db.statement() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    with db.write() as s:
        assert s.connection().exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def test_a_claim_is_committed_when_it_returns(kit: Server) -> None:
    """The claim's one statement commits by itself: another connection sees the job running."""
    jobs = kit.services.jobs
    with kit.services.db.write() as s:  # a kind no worker runs: only this claim takes it
        job = jobs.enqueue(s, kind="test.claimed_here", payload={}, tenant="t1")
    [claimed] = jobs.claim("test-claimer", ["test.claimed_here"], 5)
    assert (claimed.id, claimed.status, claimed.attempts) == (job.id, Status.RUNNING, 1)
    with kit.services.db.engine.connect() as conn:
        row = conn.execute(
            select(JOBS.c.status, JOBS.c.lease_owner).where(JOBS.c.id == job.id)
        ).one()
    assert tuple(row) == ("running", "test-claimer")
    jobs.cancel(job.id)


def test_checkpointing_job_outlives_the_timeout(kit: Server) -> None:
    """A job that keeps checkpointing runs past the 1.5 s timeout in one attempt."""
    [job_id] = enqueue_many(kit, "testkit.long", 1, {"steps": 4, "pause": 1.0})
    job = _final(kit, job_id)
    assert job.status == Status.SUCCEEDED
    assert job.attempts == 1
    assert job.progress == {"step": 4}
    assert effect_counts(kit).get(job_id) == 1


def test_regression_a_key_freed_after_the_insert_was_refused_with_no_holder(kit: Server) -> None:
    """PostgreSQL: when the key's holder became final between the INSERT that skipped a job
    and the look for the holder, the job was refused naming no job (jef-one answered 409
    JOB_IN_PROGRESS with `job_id: null` though no job was in progress). The key is free then:
    the job is inserted again and written."""
    services = kit.services
    if not services.db.is_postgres:
        pytest.skip("SQLite's one writer: no holder can become final inside the INSERT's write")
    key = f"freed-{threading.get_ident()}-{services.clock.now().timestamp()}"
    far = services.clock.now().replace(year=2999)
    with services.db.write() as s:
        holder = services.jobs.enqueue(
            s, kind="testkit.write", payload={}, tenant="t", exclusive_key=key, run_after=far
        )
    here, fired = threading.get_ident(), []

    def finish_holder(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        # Right after this thread's jobs INSERT skipped the job: the holder's final commit.
        if threading.get_ident() != here or fired or not statement.startswith("INSERT INTO jobs"):
            return
        fired.append(statement)
        with services.db.write() as other:
            other.execute(update(JOBS).where(JOBS.c.id == holder.id).values(status="cancelled"))

    services.db.listen("after_cursor_execute", finish_holder)
    try:
        with services.db.write() as s:
            [outcome] = services.jobs.enqueue_many(
                s, [NewJob("testkit.write", {}, "t", exclusive_key=key, run_after=far)]
            )
    finally:
        services.db.unlisten("after_cursor_execute", finish_holder)
    assert fired
    assert isinstance(outcome, Job), outcome
    with services.db.read() as s:
        active = s.execute(
            select(JOBS.c.id).where(JOBS.c.exclusive_key == key, JOBS.c.status == "queued")
        ).scalars()
        assert list(active) == [outcome.id]
    services.jobs.cancel(outcome.id)
