"""Group commit: concurrent writers share one transaction; each is answered after COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from time import sleep
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    Text,
    cast,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from tests.harness import hold_group_commit, uid, wait_for
from tests.system.conftest import core_services
from tests.system.typedrows import EVERY_TYPE, typed_table
from writegate.core.db import BatchInsert, BatchUpdate
from writegate.core.exceptions import ExclusiveJobExists
from writegate.core.jobs import Job, JobRow, NewJob, Status
from writegate.core.services import Services

#: a scratch table outside Base.metadata, so migrations checks never see it
scratch = MetaData()
rows = Table("core_test_rows", scratch, Column("id", String(64), primary_key=True))
typed = typed_table("core_test_typed", scratch)


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    """Core services on the session database, without any API module."""
    with core_services(db_url, scratch) as svc:
        yield svc


def _gate(services: Services) -> tuple[threading.Event, Future[str]]:
    """Hold the one group-commit writer inside a transaction until released."""
    return hold_group_commit(services.db.group)


def _wait_queued(services: Services, n: int) -> None:
    """Wait until n writes from other threads are queued behind the held one."""
    wait_for(lambda: len(services.db.group.queued()) >= n, timeout=30, interval=0.01)


def _committed_ids(services: Services, ids: list[str]) -> set[str]:
    with services.db.read() as s:
        return set(s.scalars(select(rows.c.id).where(rows.c.id.in_(ids))))


def _insert(row_id: str) -> Any:
    def fn(s: Session) -> str:
        s.execute(insert(rows).values(id=row_id))
        return row_id

    return fn


def test_concurrent_group_writes_share_one_commit_and_all_are_durable(
    services: Services,
) -> None:
    batches: list[int] = []
    services.db.group.on_batch = batches.append
    release, first = _gate(services)
    ids = [uid("row-") for _ in range(20)]
    sessions: list[int] = []

    def write(row_id: str) -> str:
        def fn(s: Session) -> str:
            sessions.append(id(s))
            s.execute(insert(rows).values(id=row_id))
            return row_id

        return services.db.group.run_sync(fn)

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(write, i) for i in ids]
        # Every caller is queued behind the held transaction before any of them commits.
        _wait_queued(services, 20)
        assert not any(f.done() for f in futures)
        assert _committed_ids(services, ids) == set()
        release.set()
        answered = [f.result(30) for f in futures]
    assert first.result(30) == "held"
    assert sorted(answered) == sorted(ids)
    assert _committed_ids(services, ids) == set(ids)
    # Queued while the writer was busy, they were committed in one transaction.
    assert batches == [1, 20]
    assert len(set(sessions)) == 1


def test_a_failing_writer_does_not_poison_the_others_in_its_batch(services: Services) -> None:
    release, _first = _gate(services)
    good = [uid("good-"), uid("good-")]
    bad = uid("bad-")

    def fail(s: Session) -> None:
        s.execute(insert(rows).values(id=bad))
        raise ValueError("refused by the caller")

    f1 = services.db.group.submit(_insert(good[0]))
    f2 = services.db.group.submit(fail)
    f3 = services.db.group.submit(_insert(good[1]))
    release.set()
    assert f1.result(30) == good[0]
    with pytest.raises(ValueError, match="refused by the caller"):
        f2.result(30)
    assert f3.result(30) == good[1]
    assert _committed_ids(services, [*good, bad]) == set(good)


def test_a_refused_one_caller_write_does_not_replay_its_batch(services: Services) -> None:
    """Regression: one caller's refusal (BokaMera's 409 for a sync already running) rolled
    back the whole batch and replayed every caller in a savepoint, so under load almost every
    batch ran twice (the PostgreSQL load test: 50 requests a second, p50 4 s). Now only it is
    undone: it and the one-caller writes queued before it run again in the same transaction,
    the ones after it once."""
    release, _first = _gate(services)
    good = [uid("good-"), uid("good-")]
    bad = uid("bad-")
    runs: list[str] = []

    def write(row_id: str) -> Any:
        def fn(s: Session) -> str:
            runs.append(row_id)
            s.execute(insert(rows).values(id=row_id))
            if row_id == bad:
                raise ValueError("refused")
            return row_id

        return fn

    batches: list[int] = []
    services.db.group.on_batch = batches.append
    futures = [services.db.group.submit(write(i)) for i in (good[0], bad, good[1])]
    _wait_queued(services, 3)
    release.set()
    assert futures[0].result(30) == good[0]
    with pytest.raises(ValueError, match="refused"):
        futures[1].result(30)
    assert futures[2].result(30) == good[1]
    assert runs == [good[0], bad, good[0], bad, good[1]]
    assert batches == [3]  # one transaction
    assert _committed_ids(services, [*good, bad]) == set(good)


def test_one_caller_writes_of_a_batch_share_one_savepoint(services: Services) -> None:
    """Regression: each one-caller write in a batch (a threaded job's step, most of all) took
    a SAVEPOINT and a RELEASE of its own, two of the three round trips of a one-row step."""
    release, _first = _gate(services)
    ids = [uid("row-") for _ in range(5)]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    futures = [services.db.group.submit(_insert(i)) for i in ids]
    _wait_queued(services, len(ids))
    event.listen(services.db.engine, "before_cursor_execute", seen)
    try:
        release.set()
        assert [f.result(30) for f in futures] == ids
    finally:
        event.remove(services.db.engine, "before_cursor_execute", seen)
    assert statements.count("SAVEPOINT") == 1
    assert statements.count("INSERT") == len(ids)
    assert _committed_ids(services, ids) == set(ids)


def test_a_batch_runs_its_writes_in_one_fixed_order(services: Services) -> None:
    """Two batches that ran the same writes in their queue order took their locks in
    different orders (ABS's version counter, then an Ikonomikal code counter; the other way
    round in the next batch) and could deadlock on PostgreSQL. A batch runs its writes by
    name, whatever order their callers queued in; one-caller writes come last."""
    group = services.db.group
    order: list[str] = []

    def a_write(_session: Session, items: list[Any]) -> list[Any]:
        order.append("a_write")
        return items

    def b_write(_session: Session, items: list[Any]) -> list[Any]:
        order.append("b_write")
        return items

    for queued in (["b", "single", "a"], ["single", "a", "b"]):
        order.clear()
        release, held = _gate(services)
        writes = {"a": a_write, "b": b_write}
        futures = [
            group.submit(lambda _s: order.append("single"))
            if name == "single"
            else group.submit_many(writes[name], name)
            for name in queued
        ]
        _wait_queued(services, 3)
        release.set()
        held.result(30)
        for f in futures:
            f.result(30)
        assert order == ["a_write", "b_write", "single"], queued


def test_a_failed_statement_isolates_its_caller_on_postgresql_too(services: Services) -> None:
    """A duplicate key aborts a PostgreSQL transaction: the batch replays, each in a savepoint."""
    taken = uid("taken-")
    with services.db.write() as s:
        s.execute(insert(rows).values(id=taken))
    release, _first = _gate(services)
    before, after = uid("before-"), uid("after-")
    futures = [services.db.group.submit(_insert(i)) for i in (before, taken, after)]
    release.set()
    assert futures[0].result(30) == before
    with pytest.raises(IntegrityError):
        futures[1].result(30)
    assert futures[2].result(30) == after
    assert _committed_ids(services, [before, after]) == {before, after}


def test_submit_futures_resolve_only_once_their_commit_is_visible(services: Services) -> None:
    release, _first = _gate(services)
    ids = [uid("submit-") for _ in range(5)]
    seen: dict[str, set[str]] = {}

    def look(row_id: str) -> Any:
        # Runs as the future resolves: the row must be committed, seen by another connection.
        return lambda _f: seen.__setitem__(row_id, _committed_ids(services, [row_id]))

    futures = []
    for row_id in ids:
        future = services.db.group.submit(_insert(row_id))
        future.add_done_callback(look(row_id))
        futures.append(future)
    assert not any(f.done() for f in futures)
    assert _committed_ids(services, ids) == set()
    release.set()
    assert [f.result(30) for f in futures] == ids
    wait_for(lambda: len(seen) == len(ids), timeout=30)  # callbacks run after result()
    assert seen == {i: {i} for i in ids}


def test_a_submitted_write_that_fails_resolves_with_its_error_and_writes_nothing(
    services: Services,
) -> None:
    row_id = uid("nope-")

    def fail(s: Session) -> None:
        s.execute(insert(rows).values(id=row_id))
        raise LookupError("no such thing")

    future = services.db.group.submit(fail)
    assert isinstance(future.exception(30), LookupError)
    assert _committed_ids(services, [row_id]) == set()


def test_exclusive_key_race_inside_one_batch_admits_exactly_one(services: Services) -> None:
    release, _first = _gate(services)
    key = uid("excl-")
    tenant = uid("tenant-")

    def enqueue(s: Session) -> str:
        return services.jobs.enqueue(
            s, kind="core.test", payload={}, tenant=tenant, exclusive_key=key
        ).id

    futures = [services.db.group.submit(enqueue) for _ in range(4)]
    release.set()
    outcomes: list[Any] = []
    for f in futures:
        try:
            outcomes.append(f.result(30))
        except ExclusiveJobExists as exc:
            outcomes.append(exc)
    admitted = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, ExclusiveJobExists)]
    assert len(admitted) == 1
    assert len(refused) == 3
    assert all(r.job_id == admitted[0] for r in refused)
    with services.db.read() as s:
        count = s.scalar(select(func.count()).where(JobRow.exclusive_key == key))
    assert count == 1


def test_run_answers_async_callers_after_commit(services: Services) -> None:
    row_ids = [uid("async-") for _ in range(10)]

    async def main() -> list[str]:
        return await asyncio.gather(*(services.db.group.run(_insert(r)) for r in row_ids))

    assert sorted(asyncio.run(main())) == sorted(row_ids)
    assert _committed_ids(services, row_ids) == set(row_ids)


def test_a_failed_commit_fails_every_caller_in_the_batch(services: Services) -> None:
    dup = uid("dup-")
    with services.db.write() as s:
        s.execute(insert(rows).values(id=dup))
    release, _first = _gate(services)
    other = uid("other-")

    def duplicate(s: Session) -> None:
        # Deferred to COMMIT time: no error inside the caller's write, so the whole batch's
        # COMMIT fails and nobody may be told their write was accepted.
        s.info["boom"] = True

    def boom(s: Session) -> None:
        if not s.in_nested_transaction() and s.info.pop("boom", False):
            s.execute(insert(rows).values(id=dup))

    event.listen(Session, "before_commit", boom)
    try:
        f1 = services.db.group.submit(duplicate)
        f2 = services.db.group.submit(_insert(other))
        release.set()
        for f in (f1, f2):
            with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
                f.result(30)
    finally:
        event.remove(Session, "before_commit", boom)
    assert _committed_ids(services, [other]) == set()


def test_a_group_write_cannot_wait_for_another_group_write(services: Services) -> None:
    def inner(s: Session) -> None:
        services.db.group.run_sync(lambda s2: None)

    with pytest.raises(RuntimeError, match="cannot wait for another group write"):
        services.db.group.run_sync(inner)


def test_a_batch_write_that_raises_is_replayed_item_by_item(services: Services) -> None:
    """A BatchWrite of jobs: one multi-row INSERT; a duplicate id fails only its own caller."""
    tenant = uid("tenant-")
    taken = uid("job-")
    with services.db.write() as s:
        services.jobs.enqueue(s, kind="core.test", payload={}, tenant=tenant, job_id=taken)
    fresh = [uid("job-") for _ in range(20)]
    calls: list[int] = []

    def enqueue_all(s: Session, job_ids: list[str]) -> list[Any]:
        calls.append(len(job_ids))
        specs = [NewJob("core.test", {"id": i}, tenant, job_id=i) for i in job_ids]
        return list(services.jobs.enqueue_many(s, specs))

    async def main() -> list[Any]:
        # One loop iteration queues all 21 jobs: they share one multi-row INSERT, the
        # duplicate id fails it, and the batch is replayed one savepoint per job.
        return await asyncio.gather(
            *(
                services.db.group.run_many(enqueue_all, job_id)
                for job_id in [*fresh[:10], taken, *fresh[10:]]
            ),
            return_exceptions=True,
        )

    outcomes = asyncio.run(main())
    assert calls == [21] + [1] * 21
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1
    assert isinstance(failed[0], IntegrityError)
    assert sorted(o.id for o in outcomes if not isinstance(o, BaseException)) == sorted(fresh)
    with services.db.read() as s:
        stored = {j.id: j for j in services.jobs.find(s, tenant=tenant, kind="core.test", limit=50)}
    assert set(stored) == {taken, *fresh}
    assert all(stored[j].status is Status.QUEUED for j in fresh)
    assert stored[taken].payload == {}


def test_run_many_rolls_back_a_refused_item_alone_and_the_others_commit(
    services: Services,
) -> None:
    """An exception outcome undoes that item's own writes; every other caller's commit. The
    replay runs the refused item alone and the others still together: one batch call."""
    ids = [uid("many-") for _ in range(12)]
    refused = ids[5]
    singles = [uid("single-") for _ in range(3)]
    calls: list[list[str]] = []

    def write_many(s: Session, items: list[str]) -> list[Any]:
        calls.append(list(items))
        # The refused item's row is written too: the refusal alone must undo it.
        s.execute(insert(rows), [{"id": i} for i in items])
        return [ValueError(f"no {i}") if i == refused else i for i in items]

    async def main() -> list[Any]:
        many = [services.db.group.run_many(write_many, i) for i in ids]
        one = [services.db.group.run(_insert(i)) for i in singles]  # plain writes, same batch
        return await asyncio.gather(*many, *one, return_exceptions=True)

    batches: list[int] = []
    services.db.group.on_batch = batches.append
    outcomes = asyncio.run(main())
    assert batches == [15]  # every caller in one transaction, replayed once
    assert calls[0] == ids  # one call for the whole batch, items in order
    # then the others together in a savepoint, and the refused one alone in its own
    assert calls[1:] == [[i for i in ids if i != refused], [refused]]
    assert isinstance(outcomes[5], ValueError)
    assert str(outcomes[5]) == f"no {refused}"
    assert [o for o in outcomes if not isinstance(o, BaseException)] == [
        *ids[:5],
        *ids[6:],
        *singles,
    ]
    assert _committed_ids(services, ids + singles) == set(ids + singles) - {refused}


def test_a_replay_whose_group_fails_again_runs_each_item_alone(services: Services) -> None:
    """If an item that passed the first run fails in the replay's shared savepoint, that
    savepoint is undone and every item of the write runs alone."""
    ids = [uid("again-") for _ in range(4)]
    refused, flaky = ids[1], ids[2]
    calls: list[list[str]] = []

    def write_many(s: Session, items: list[str]) -> list[Any]:
        calls.append(list(items))
        s.execute(insert(rows), [{"id": i} for i in items])
        fails = {refused} | ({flaky} if len(calls) == 2 else set())  # flaky: in the replay
        return [ValueError(f"no {i}") if i in fails else i for i in items]

    async def main() -> list[Any]:
        many = [services.db.group.run_many(write_many, i) for i in ids]
        return await asyncio.gather(*many, return_exceptions=True)

    outcomes = asyncio.run(main())
    rest = [i for i in ids if i != refused]
    assert calls == [ids, rest, *([i] for i in ids)]
    assert [isinstance(o, ValueError) for o in outcomes] == [False, True, False, False]
    assert _committed_ids(services, ids) == set(ids) - {refused}


def test_writes_queued_during_a_commit_are_committed_while_the_loop_is_busy(
    services: Services,
) -> None:
    """The committer starts the next batch itself; it used to wait for the event loop."""
    services.db.group.max_in_flight = 1  # one committer: it alone can take the next batch
    first, later = uid("first-"), [uid("later-") for _ in range(5)]
    entered, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def write_many(s: Session, items: list[str]) -> list[str]:
        calls.append(list(items))
        if first in items:
            entered.set()
            release.wait(30)
        s.execute(insert(rows), [{"id": i} for i in items])
        return items

    async def main() -> list[str]:
        one = asyncio.ensure_future(services.db.group.run_many(write_many, first))
        await asyncio.to_thread(entered.wait, 30)
        rest = [asyncio.ensure_future(services.db.group.run_many(write_many, i)) for i in later]
        await asyncio.sleep(0)  # every later write is queued behind the held batch
        release.set()
        # Block the loop: the next batch must be committed without it.
        wait_for(lambda: _committed_ids(services, later) == set(later), timeout=30)
        return await asyncio.gather(one, *rest)

    assert asyncio.run(main()) == [first, *later]
    assert calls == [[first], later]
    wait_for(lambda: services.db.group._threads.in_flight == 0, timeout=10)
    after = uid("after-")  # the committer ended when nothing was left; a new one starts
    assert asyncio.run(services.db.group.run_many(write_many, after)) == after
    assert _committed_ids(services, [after]) == {after}


def test_run_many_replays_items_alone_when_the_write_raises(services: Services) -> None:
    ids = [uid("replay-") for _ in range(6)]
    bad = ids[2]

    def write_many(s: Session, items: list[str]) -> list[str]:
        # Writes the good rows first, then fails: the shared attempt must leave nothing.
        good = [{"id": i} for i in items if i != bad]
        if good:
            s.execute(insert(rows), good)
        if bad in items:
            raise RuntimeError("boom")
        return items

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(services.db.group.run_many(write_many, i) for i in ids), return_exceptions=True
        )

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[2], RuntimeError)
    assert [o for o in outcomes if not isinstance(o, BaseException)] == ids[:2] + ids[3:]
    assert _committed_ids(services, ids) == set(ids) - {bad}


def test_enqueue_many_refuses_held_keys_without_breaking_the_transaction(
    services: Services,
) -> None:
    tenant = uid("tenant-")
    held, free = uid("key-"), uid("key-")
    with services.db.write() as s:
        holder = services.jobs.enqueue(
            s, kind="core.test", payload={}, tenant=tenant, exclusive_key=held
        )
    specs = [
        NewJob("core.test", {"n": 0}, tenant, exclusive_key=held),
        NewJob("core.test", {"n": 1}, tenant, exclusive_key=free),
        NewJob("core.test", {"n": 2}, tenant, exclusive_key=free),  # same key, same call
        NewJob("core.test", {"n": 3}, tenant),
    ]
    with services.db.write() as s:
        out = services.jobs.enqueue_many(s, specs)
        s.execute(insert(rows).values(id=f"{tenant}-after"))  # the transaction is still usable
    assert isinstance(out[0], ExclusiveJobExists)
    assert out[0].job_id == holder.id
    first = out[1]
    assert isinstance(first, Job)
    assert first.status is Status.QUEUED
    assert isinstance(out[2], ExclusiveJobExists)
    assert out[2].job_id == first.id
    assert isinstance(out[3], Job)
    with services.db.read() as s:
        stored = services.jobs.find(s, tenant=tenant, kind="core.test", limit=50)
    assert {j.id for j in stored} == {holder.id, first.id, out[3].id}
    assert {j.payload["n"] for j in stored if j.payload} == {1, 3}
    assert _committed_ids(services, [f"{tenant}-after"]) == {f"{tenant}-after"}


def _orm_job(s: Session, tenant: str, payload: Any, run_after: datetime) -> str:
    """A job row added through the ORM, as a reference for the batch INSERT's rows."""
    job_id = uid("orm-")
    now = datetime(2030, 1, 1)
    s.add(
        JobRow(
            id=job_id,
            kind="core.test",
            tenant=tenant,
            principal=None,
            payload=payload,
            status=Status.QUEUED.value,
            attempts=0,
            max_attempts=5,
            run_after=run_after,
            created_at=now,
            updated_at=now,
        )
    )
    s.flush()
    return job_id


def test_enqueue_many_stores_rows_exactly_as_the_orm_does(services: Services) -> None:
    """The raw batch INSERT binds through the column types: rows read back like ORM rows."""
    tenant = uid("tenant-")
    payload = {"text": 'naïve ☃ a,"b"{}\\ NULL', "n": 1.5, "nested": [None, True, {"k": "v"}]}
    run_after = datetime(2030, 1, 2, 3, 4, 5, 678901)
    with services.db.write() as s:
        orm = _orm_job(s, tenant, payload, run_after)
        batch, keyless = services.jobs.enqueue_many(
            s,
            [
                NewJob("core.test", payload, tenant, run_after=run_after, exclusive_key=uid("k")),
                NewJob("core.test", "NULL", tenant, principal='p,"{}', run_after=run_after),
            ],
        )
    assert isinstance(batch, Job)
    assert isinstance(keyless, Job)
    with services.db.read() as s:
        stored = services.jobs.get(s, keyless.id)
    assert stored is not None
    assert (stored.payload, stored.principal, stored.exclusive_key) == ("NULL", 'p,"{}', None)
    with services.db.read() as s:
        a, b = services.jobs.get(s, orm), services.jobs.get(s, batch.id)
    assert a is not None
    assert b is not None
    for field in ("kind", "tenant", "principal", "payload", "status", "attempts", "run_after"):
        assert getattr(b, field) == getattr(a, field), field
    assert b.payload == payload
    assert b.run_after == run_after
    assert b == batch  # the Job enqueue_many returned is the row as stored
    assert batch.created
    with services.db.read() as s:  # the claim index orders by these columns as stored
        due = s.scalar(
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.tenant == tenant, JobRow.run_after == run_after)
        )
    assert due == 3


def test_enqueue_many_stores_an_aware_run_after_as_naive_utc(services: Services) -> None:
    """A run_after with a UTC offset is stored as the naive UTC time writegate keeps."""
    tenant = uid("tenant-")
    aware = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    with services.db.write() as s:
        one = services.jobs.enqueue(s, kind="core.test", payload={}, tenant=tenant, run_after=aware)
        (batch,) = services.jobs.enqueue_many(s, [NewJob("core.test", {}, tenant, run_after=aware)])
    assert isinstance(batch, Job)
    with services.db.read() as s:
        a, b = (services.jobs.get(s, j.id) for j in (one, batch))
    assert a is not None
    assert b is not None
    assert a.run_after == b.run_after == datetime(2030, 1, 2, 1, 4, 5, 678901)
    assert b.run_after.tzinfo is None


def test_enqueue_many_gives_the_earlier_job_for_a_used_idempotency_key(services: Services) -> None:
    """Keyed jobs go in the same multi-row INSERT: a used key (earlier, or earlier in the
    same call) gives the first job back, not created, and nothing new is written."""
    tenant = uid("tenant-")
    used, fresh = uid("idem-"), uid("idem-")
    with services.db.write() as s:
        earlier = services.jobs.enqueue(
            s, kind="core.test", payload={"n": 0}, tenant=tenant, idempotency_key=used
        )
    with services.db.write() as s:
        again, first, twice, other_kind = services.jobs.enqueue_many(
            s,
            [
                NewJob("core.test", {"n": 1}, tenant, idempotency_key=used),
                NewJob("core.test", {"n": 2}, tenant, idempotency_key=fresh),
                NewJob("core.test", {"n": 3}, tenant, idempotency_key=fresh),
                NewJob("core.other", {"n": 4}, tenant, idempotency_key=used),
            ],
        )
    assert isinstance(again, Job)
    assert (again.id, again.created, again.payload) == (earlier.id, False, {"n": 0})
    assert isinstance(first, Job)
    assert first.created
    assert isinstance(twice, Job)
    assert (twice.id, twice.created, twice.payload) == (first.id, False, {"n": 2})
    assert isinstance(other_kind, Job)  # the key is per (tenant, kind)
    assert other_kind.created
    with services.db.read() as s:
        stored = services.jobs.find(s, tenant=tenant)
    assert sorted(j.payload["n"] for j in stored) == [0, 2, 4]


def test_enqueue_many_binds_each_rows_own_values_in_a_shared_column(
    services: Services,
) -> None:
    """Rows sharing one value object and rows with their own value are both stored right."""
    tenant = uid("tenant-")
    shared = datetime(2031, 5, 6, 7, 8, 9, 123456)
    own = [datetime(2031, 5, 6, 7, 8, 9, n) for n in range(4)]
    when = [shared, shared, own[0], shared, own[1], own[2], own[2], own[3]]
    payload = {"same": "object"}
    with services.db.write() as s:
        out = services.jobs.enqueue_many(
            s, [NewJob("core.test", payload, tenant, run_after=w) for w in when]
        )
    with services.db.read() as s:
        stored = [services.jobs.get(s, j.id) for j in out if isinstance(j, Job)]
    assert [j.run_after for j in stored if j is not None] == when
    assert [j.payload for j in stored if j is not None] == [payload] * len(when)


def test_enqueue_many_takes_more_jobs_than_one_statement_can_bind(services: Services) -> None:
    """More values than SQLite binds in one statement: the INSERT is split, nothing lost."""
    tenant = uid("tenant-")
    specs = [
        NewJob("core.test", {"n": n}, tenant, exclusive_key=f"{tenant}-{n}") for n in range(50)
    ]
    with services.db.write() as s:
        raw = s.connection().connection.driver_connection
        if services.db.is_sqlite:  # 8 rows of 14 columns per statement at most
            old = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 120)
        try:
            out = services.jobs.enqueue_many(s, specs)
        finally:
            if services.db.is_sqlite:
                raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, old)
    assert all(isinstance(j, Job) for j in out)
    with services.db.read() as s:
        stored = s.scalars(select(JobRow.payload).where(JobRow.tenant == tenant)).all()
    assert sorted(p["n"] for p in stored) == list(range(50))


def test_job_ids_are_time_ordered_uuids(services: Services) -> None:
    """UUIDv7 ids: jobs queued together write neighbouring index entries, not random pages."""
    tenant = uid("tenant-")
    with services.db.write() as s:
        out = services.jobs.enqueue_many(s, [NewJob("core.test", {}, tenant) for _ in range(50)])
    ids = [j.id for j in out if isinstance(j, Job)]
    assert len(ids) == 50
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert [i[:8] for i in ids] == sorted(i[:8] for i in ids)  # the leading timestamp


def test_enqueue_many_duplicate_id_with_a_key_raises(services: Services) -> None:
    tenant = uid("tenant-")
    job_id = uid("job-")
    with services.db.write() as s:
        services.jobs.enqueue(s, kind="core.test", payload={}, tenant=tenant, job_id=job_id)
    with pytest.raises(IntegrityError), services.db.write() as s:
        services.jobs.enqueue_many(
            s, [NewJob("core.test", {}, tenant, job_id=job_id, exclusive_key=uid("key-"))]
        )


def test_defer_commits_one_job_at_once_and_wakes_this_processs_worker(
    services: Services,
) -> None:
    tenant = uid("tenant-")
    services.wakeup.clear()  # whatever an earlier test left pending
    job = services.jobs.defer(kind="core.test", payload={"n": 1}, tenant=tenant, max_attempts=2)
    assert services.wakeup.wait(0)
    assert job.status is Status.QUEUED
    assert job.created
    with services.db.read() as s:  # another connection: the row is committed
        stored = services.jobs.get(s, job.id)
    assert stored is not None
    assert (stored.kind, stored.tenant, stored.payload, stored.status) == (
        "core.test",
        tenant,
        {"n": 1},
        Status.QUEUED,
    )
    assert (stored.attempts, stored.max_attempts, stored.run_after) == (0, 2, job.run_after)


def test_defer_refuses_a_held_exclusive_key_and_writes_nothing(services: Services) -> None:
    tenant, key = uid("tenant-"), uid("key-")
    holder = services.jobs.defer(
        kind="core.test", payload={"n": 1}, tenant=tenant, exclusive_key=key
    )
    with pytest.raises(ExclusiveJobExists) as refused:
        services.jobs.defer(kind="core.test", payload={"n": 2}, tenant=tenant, exclusive_key=key)
    assert refused.value.job_id == holder.id
    with services.db.read() as s:
        stored = services.jobs.find(s, tenant=tenant)
    assert [(j.id, j.payload) for j in stored] == [(holder.id, {"n": 1})]


def test_defer_of_a_duplicate_id_raises_and_writes_nothing(services: Services) -> None:
    tenant, job_id = uid("tenant-"), uid("job-")
    services.jobs.defer(kind="core.test", payload={"n": 1}, tenant=tenant, job_id=job_id)
    with pytest.raises(IntegrityError):
        services.jobs.defer(kind="core.test", payload={"n": 2}, tenant=tenant, job_id=job_id)
    with services.db.read() as s:
        stored = services.jobs.find(s, tenant=tenant)
    assert [(j.id, j.payload) for j in stored] == [(job_id, {"n": 1})]


def test_lock_holds_its_key_until_the_transaction_ends(services: Services) -> None:
    if not services.db.is_postgres:
        pytest.skip("SQLite write transactions are serialized by BEGIN IMMEDIATE already")
    key, free = uid("lock-"), uid("lock-")
    got, other_key = threading.Event(), threading.Event()

    def other(k: str, done: threading.Event) -> None:
        with services.db.write() as s:
            services.db.lock(s, k)
            done.set()

    with services.db.write() as s:
        services.db.lock(s, key)
        t = threading.Thread(target=other, args=(key, got))
        t.start()
        unrelated = threading.Thread(target=other, args=(free, other_key))
        unrelated.start()
        assert other_key.wait(30)  # another key is not held
        assert not got.wait(0.5)  # blocked on the key this transaction holds
    assert got.wait(30)
    t.join(30)
    unrelated.join(30)


def test_batch_insert_stores_every_column_type_as_a_core_insert_does(services: Services) -> None:
    """BatchInsert binds each value through its column type, on SQLite and on PostgreSQL."""
    columns = [c.name for c in typed.columns]
    batch = BatchInsert(services.db.engine.dialect, typed, columns, "")
    value = EVERY_TYPE
    core, fast, empty = uid("core-"), uid("fast-"), uid("empty-")
    with services.db.write() as s:
        s.execute(insert(typed), [{"id": core, **value}])
        batch.execute(
            s,
            [
                [fast if c == "id" else value[c] for c in columns],
                [empty if c == "id" else None for c in columns],
            ],
        )
    with services.db.read() as s:
        got = {r.id: r._asdict() for r in s.execute(select(typed).where(typed.c.id.like("%-%")))}
    assert {k: v for k, v in got[fast].items() if k != "id"} == value
    assert {k: v for k, v in got[core].items() if k != "id"} == value
    assert all(got[empty][c] is None for c in columns if c != "id")


def test_batch_insert_stores_json_as_the_same_text_as_a_core_insert(services: Services) -> None:
    """A JSON value, and None (JSON's null in a column that is not `none_as_null`), are stored
    as exactly the text a Core INSERT stores; on PostgreSQL they travel nested in the batch's
    document, which must not turn None into SQL NULL."""
    batch = BatchInsert(services.db.engine.dialect, typed, ["id", "doc"], "")
    values = {"doc": EVERY_TYPE["doc"], "null": None, "text": "a string", "list": [1, "2"]}
    ids = {name: (uid(f"core-{name}-"), uid(f"fast-{name}-")) for name in values}
    with services.db.write() as s:
        s.execute(insert(typed), [{"id": core, "doc": values[n]} for n, (core, _) in ids.items()])
        batch.execute(s, [[fast, values[n]] for n, (_, fast) in ids.items()])
    stored = cast(typed.c.doc, Text)
    with services.db.read() as s:
        text = dict(s.execute(select(typed.c.id, stored).where(typed.c.id.like("%-%"))).all())
    for core, fast in ids.values():
        assert text[fast] == text[core]
    assert text[ids["null"][0]] == "null"


def test_batch_write_refuses_a_value_json_cannot_carry_inside_a_json_column(
    services: Services,
) -> None:
    """A datetime inside a JSON value raises TypeError, as a Core write's serializer does,
    and writes nothing (it is not turned into text, as a DateTime column's value is)."""
    columns = ["id", "ts", "doc"]
    insert_rows = BatchInsert(services.db.engine.dialect, typed, columns, "")
    update_rows = BatchUpdate(services.db.engine.dialect, typed, "id", ["ts", "doc"])
    kept, new = uid("kept-"), uid("new-")
    with services.db.write() as s:
        s.execute(insert(typed).values(id=kept, doc={"at": "then"}))
    bad = {"at": EVERY_TYPE["ts"]}
    for write, row in ((insert_rows, new), (update_rows, kept)):
        with pytest.raises(TypeError), services.db.write() as s:
            write.execute(s, [[row, EVERY_TYPE["ts"], bad]])
    with services.db.read() as s:
        both = typed.c.id.in_([kept, new])
        rows = s.execute(select(typed.c.id, typed.c.ts, typed.c.doc).where(both))
        assert [tuple(r) for r in rows] == [(kept, None, {"at": "then"})]


def test_batch_insert_failure_is_sqlalchemys_error_and_writes_nothing(services: Services) -> None:
    """A driver error in a BatchInsert comes out as SQLAlchemy's, with its statement."""
    batch = BatchInsert(services.db.engine.dialect, typed, ["id", "note"], "")
    first = uid("first-")
    with pytest.raises(IntegrityError) as info, services.db.write() as s:
        batch.execute(s, [[first, "kept?"], [None, "no id"]])
    assert info.value.statement == batch.sql(2)
    assert not info.value.connection_invalidated
    with services.db.read() as s:
        assert s.scalar(select(typed.c.id).where(typed.c.id == first)) is None


def test_batch_insert_with_a_key_returns_the_keys_of_the_rows_it_wrote(services: Services) -> None:
    """`key`: the written rows' keys, as RETURNING gives them; a conflict leaves out its row.

    On SQLite the INSERT first runs without RETURNING; after a conflict its savepoint undoes
    it for the RETURNING form, so no row is written twice and none is lost.
    """
    batch = BatchInsert(
        services.db.engine.dialect, typed, ["id", "note"], "ON CONFLICT DO NOTHING", key="id"
    )
    taken, a, b, c = uid("taken-"), uid("a-"), uid("b-"), uid("c-")
    with services.db.write() as s:
        assert {r[0] for r in batch.execute(s, [[taken, "first"]])} == {taken}
        assert {r[0] for r in batch.execute(s, [[a, "new"], [b, "new"]])} == {a, b}
        written = batch.execute(s, [[c, "new"], [taken, "again"], [a, "again"]])
        assert [r[0] for r in written] == [c]
        s.execute(insert(typed).values(id=uid("after-"), note="the transaction goes on"))
    with services.db.read() as s:
        notes = dict(
            s.execute(
                select(typed.c.id, typed.c.note).where(typed.c.id.in_([taken, a, b, c]))
            ).all()
        )
    assert notes == {taken: "first", a: "new", b: "new", c: "new"}


def test_batch_insert_with_a_key_failure_writes_nothing_and_leaves_the_transaction_usable(
    services: Services,
) -> None:
    """A driver error in the keyed form is SQLAlchemy's; a caller that catches it goes on."""
    batch = BatchInsert(
        services.db.engine.dialect, typed, ["id", "note"], "ON CONFLICT DO NOTHING", key="id"
    )
    first, kept = uid("first-"), uid("kept-")
    with services.db.write() as s:
        with pytest.raises(IntegrityError), s.begin_nested():
            batch.execute(s, [[first, "kept?"], [None, "no id"]])
        assert [r[0] for r in batch.execute(s, [[kept, "yes"]])] == [kept]
    with services.db.read() as s:
        ids = set(s.scalars(select(typed.c.id).where(typed.c.id.in_([first, kept]))))
    assert ids == {kept}


def test_a_write_that_loses_a_deadlock_to_another_batch_runs_again(services: Services) -> None:
    """Two batches in flight lock two rows in opposite orders: both callers still commit."""
    if not services.db.is_postgres:
        pytest.skip("SQLite has one writer: two batches never hold locks at once")
    first, second = uid("row-"), uid("row-")
    with services.db.write() as s:
        s.execute(insert(typed).values([{"id": first, "n": 0}, {"id": second, "n": 0}]))
    both_hold_one = threading.Barrier(2, timeout=30)
    runs: list[str] = []

    def bump(s: Session, mine: str, theirs: str) -> None:
        runs.append(mine)
        s.execute(typed.update().where(typed.c.id == mine).values(n=typed.c.n + 1))
        if runs.count(mine) == 1:  # the first run of each waits until both hold their row
            both_hold_one.wait()
        s.execute(typed.update().where(typed.c.id == theirs).values(n=typed.c.n + 1))

    a = services.db.group.submit(lambda s: bump(s, first, second))
    b = services.db.group.submit(lambda s: bump(s, second, first))
    assert a.result(60) is None
    assert b.result(60) is None
    # One of them lost the deadlock and ran again. Its retry can lose once more: it may take
    # its first row again before the winner, woken by the loser's abort, takes that row.
    assert len(runs) >= 3
    assert len(runs) - 2 <= services.db.group.race_retries
    with services.db.read() as s:
        counts = dict(
            s.execute(select(typed.c.id, typed.c.n).where(typed.c.id.in_([first, second]))).all()
        )
    assert counts == {first: 2, second: 2}


def test_regression_a_batch_that_lost_a_deadlock_ran_again_whole(services: Services) -> None:
    """Pins a bug: a batch that lost a deadlock was run again whole, holding its first
    writes' locks while a later write waited, and under a steady mix of writes it lost on
    every retry (the load test's 503s: jef-one's jobs completed, then ABS's version counter).
    Now each of its writes runs again in a transaction of its own."""
    if not services.db.is_postgres:
        pytest.skip("SQLite has one writer: two transactions never hold locks at once")
    x, y = uid("row-"), uid("row-")
    with services.db.write() as s:
        s.execute(insert(typed).values([{"id": x, "n": 0}, {"id": y, "n": 0}]))
    seen: list[tuple[str, int]] = []
    batch_holds_x, other_holds_y = threading.Event(), threading.Event()

    def bump(s: Session, row: str) -> None:
        s.execute(typed.update().where(typed.c.id == row).values(n=typed.c.n + 1))

    class First:
        def __call__(self, s: Session, items: list[Any]) -> list[Any]:
            seen.append(("first", s.execute(text("SELECT txid_current()")).scalar_one()))
            bump(s, x)
            if len(seen) == 1:
                batch_holds_x.set()
                assert other_holds_y.wait(30)
            return [None] * len(items)

    class Second:
        def __call__(self, s: Session, items: list[Any]) -> list[Any]:
            seen.append(("second", s.execute(text("SELECT txid_current()")).scalar_one()))
            bump(s, y)  # the first run waits here for the other transaction
            return [None] * len(items)

    def other() -> None:
        with services.db.write() as s:
            bump(s, y)
            other_holds_y.set()
            assert batch_holds_x.wait(30)
            sleep(0.3)  # the batch waits first, so the server makes it the victim
            bump(s, x)

    group = services.db.group
    saved = group.max_in_flight
    release, held = hold_group_commit(group)
    try:
        first = group.submit_many(First(), None)
        second = group.submit_many(Second(), None)
        release.set()
        assert held.result(30) == "held"
        rival = threading.Thread(target=other)
        rival.start()
        assert first.result(60) is None
        assert second.result(60) is None
        rival.join(30)
    finally:
        release.set()
        group.max_in_flight = saved
    (w1, t1), (w2, t2), *again = seen
    assert (w1, w2) == ("first", "second")
    assert t1 == t2  # one batch, one transaction
    assert sorted(w for w, _ in again) == ["first", "second"]
    assert len({t for _, t in again}) == 2  # then each write on its own
    with services.db.read() as s:
        counts = dict(s.execute(select(typed.c.id, typed.c.n).where(typed.c.id.in_([x, y]))).all())
    assert counts == {x: 2, y: 2}


def test_a_deadlock_in_a_callers_savepoint_gives_up_the_whole_transaction(
    services: Services,
) -> None:
    """A caller isolated in a savepoint (a one-caller write, or a batch replayed caller by
    caller) that loses a deadlock rolls back its whole transaction, so the other batch goes
    on at once. Rolling back only the savepoint kept the locks the other batch waited for:
    each next caller deadlocked again, a second each, until clients timed out (jef-one's
    fifty racing POSTs of one session, on PostgreSQL)."""
    if not services.db.is_postgres:
        pytest.skip("SQLite has one writer: two batches never hold locks at once")
    first, second = uid("row-"), uid("row-")
    with services.db.write() as s:
        s.execute(insert(typed).values([{"id": first, "n": 0}, {"id": second, "n": 0}]))
    a_holds_first, b_holds_second = threading.Event(), threading.Event()
    runs: list[str] = []
    seen: list[int] = []

    def bump(s: Session, row: str) -> None:
        s.execute(typed.update().where(typed.c.id == row).values(n=typed.c.n + 1))

    def a1(s: Session) -> None:
        bump(s, first)

    def refuse(s: Session) -> None:
        raise ValueError("refused")

    def a2(s: Session) -> None:
        runs.append("a2")
        if runs.count("a2") == 1:  # its first run, in its savepoint: a1's lock is held
            a_holds_first.set()
            assert b_holds_second.wait(30)
        bump(s, second)

    def b(s: Session) -> None:
        bump(s, second)
        b_holds_second.set()
        sleep(0.3)  # a2 waits first, so the server makes a2's transaction the victim
        update = typed.update().where(typed.c.id == first).values(n=typed.c.n + 1)
        seen.append(s.execute(update.returning(typed.c.n)).scalar_one())

    # A first write starts the commit threads (four on PostgreSQL) before the gate allows
    # one batch at a time: b's batch needs a second thread.
    services.db.group.submit(lambda _s: None).result(30)
    release, held = _gate(services)
    futures = [services.db.group.submit(fn) for fn in (a1, refuse, a2)]
    _wait_queued(services, 3)
    services.db.group.max_in_flight = 2
    release.set()
    assert held.result(30) == "held"
    assert a_holds_first.wait(30)
    fb = services.db.group.submit(b)
    assert fb.result(60) is None
    assert futures[0].result(60) is None
    assert futures[2].result(60) is None
    with pytest.raises(ValueError, match="refused"):
        futures[1].result(60)
    # The victim gave way at once: b's bump came before a1's, which was rolled back and ran
    # again after it (with only the savepoint rolled back, a1 committed first: b saw 2).
    assert seen == [1]
    with services.db.read() as s:
        counts = dict(
            s.execute(select(typed.c.id, typed.c.n).where(typed.c.id.in_([first, second]))).all()
        )
    assert counts == {first: 2, second: 2}


def test_regression_a_connection_lost_in_a_callers_savepoint_was_a_500(services: Services) -> None:
    """PostgreSQL: a batch replayed caller by caller whose connection died in a caller's
    savepoint took the loss for that caller's own refusal, rolled the savepoint back on the
    dead connection and failed every caller with `PendingRollbackError`, which is no
    database error: clients got 500 INTERNAL_ERROR ("a bug") for a lost database. The lost
    connection ends the whole transaction: every caller gets the database's error (503
    with retry advice), and nothing is written."""
    if not services.db.is_postgres:
        pytest.skip("an SQLite connection is a file: nothing can end it from outside")
    kept = uid("row-")

    def write(s: Session) -> None:
        s.execute(insert(rows).values(id=kept))

    def refuse(s: Session) -> None:
        raise ValueError("refused")  # the batch is replayed caller by caller

    def lose_connection(s: Session) -> None:
        s.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    release, held = _gate(services)
    futures = [services.db.group.submit(fn) for fn in (write, refuse, lose_connection)]
    _wait_queued(services, 3)
    release.set()
    assert held.result(30) == "held"
    errors = []
    for future in futures:
        error = future.exception(60)
        assert error is not None
        errors.append(error)
    assert all(isinstance(e, DBAPIError) for e in errors), [type(e) for e in errors]
    assert all(e.connection_invalidated for e in errors)  # type: ignore[attr-defined]
    assert _committed_ids(services, [kept]) == set()
    services.db.group.submit(write).result(30)  # the pool gives a live connection again
    assert _committed_ids(services, [kept]) == {kept}
