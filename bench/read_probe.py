"""One PostgreSQL read by key, three ways, on one event loop; prints reads/s and ratios.

    python -m bench.read_probe [--reads N] [--tasks N] [--rounds N]

writegate's read path (`Reads.first`: the statement compiled once, run on psycopg's async
connections from `ReadPool`), against psycopg with psycopg_pool alone (the floor: the
same SQL text, no SQLAlchemy) and SQLAlchemy's async engine (`AsyncConnection.execute`,
what the read path ran on before). Each with 5 connections and `plan_cache_mode =
force_custom_plan`, in interleaved rounds. The database is `writegate_read_probe` next to
BENCH_PG_ADMIN_URL (created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select
from sqlalchemy.ext.asyncio import create_async_engine

from writegate.core.db.engine import PLAN_EACH_RUN
from writegate.core.db.reads import Reads

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
URL = f"{PG_ADMIN.rsplit('/', 1)[0]}/writegate_read_probe"
ROWS = 100
rows = Table(
    "probe_rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("n", Integer),
)
BY_ID = select(rows).where(rows.c.id == bindparam("id"))
SQL = "SELECT id, name, n FROM probe_rows WHERE id = %(id)s LIMIT 1"

Read = Callable[[int], Awaitable[object]]


async def rate(read: Read, reads: int, tasks: int) -> float:
    """Reads per second of `tasks` tasks, each reading its share of `reads` rows by key."""

    async def task() -> None:
        for i in range(reads // tasks):
            if await read(i % ROWS + 1) is None:
                raise RuntimeError("a row was not found")

    t0 = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(tasks)))
    return reads / (time.perf_counter() - t0)


async def writegate(reads: int, tasks: int) -> float:
    r = Reads(URL, 5)
    try:
        return await rate(lambda k: r.first(BY_ID, {"id": k}), reads, tasks)
    finally:
        await r.dispose()


async def psycopg_alone(reads: int, tasks: int) -> float:
    async def configure(conn: psycopg.AsyncConnection[object]) -> None:
        await conn.execute(f"SET {PLAN_EACH_RUN}")

    pool = AsyncConnectionPool(
        URL, min_size=5, max_size=5, kwargs={"autocommit": True}, configure=configure, open=False
    )
    await pool.open(wait=True)

    async def read(k: int) -> object:
        async with pool.connection() as conn:
            cur = await conn.execute(SQL, {"id": k})
            return await cur.fetchone()

    try:
        return await rate(read, reads, tasks)
    finally:
        await pool.close()


async def sqlalchemy_async(reads: int, tasks: int) -> float:
    engine = create_async_engine(
        URL.replace("postgresql://", "postgresql+psycopg://"),
        pool_size=5,
        max_overflow=0,
        isolation_level="AUTOCOMMIT",
        connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
    )
    limited = BY_ID.limit(1)

    async def read(k: int) -> object:
        async with engine.connect() as conn:
            return (await conn.execute(limited, {"id": k})).first()

    try:
        return await rate(read, reads, tasks)
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reads", type=int, default=20_000)
    ap.add_argument("--tasks", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS writegate_read_probe")
        admin.execute("CREATE DATABASE writegate_read_probe")
    try:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute("CREATE TABLE probe_rows (id int PRIMARY KEY, name text, n int)")
            conn.execute(
                "INSERT INTO probe_rows SELECT g, 'n' || g, g FROM generate_series(1, %s) g",
                (ROWS,),
            )
        ways = {"writegate": writegate, "psycopg": psycopg_alone, "sqlalchemy": sqlalchemy_async}
        got: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, way in ways.items():
                got[name].append(asyncio.run(way(args.reads, args.tasks)))
        med = {name: statistics.median(v) for name, v in got.items()}
        print(f"{args.tasks} tasks, {args.reads} reads by key, median of {args.rounds} rounds")
        for name, value in med.items():
            rounds = " ".join(f"{v:,.0f}" for v in got[name])
            print(
                f"  {name:<11} {value:8,.0f} reads/s  ({value / med['psycopg']:.2f}x psycopg "
                f"alone, {value / med['sqlalchemy']:.2f}x SQLAlchemy async)  rounds: {rounds}"
            )
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS writegate_read_probe")


if __name__ == "__main__":
    main()
