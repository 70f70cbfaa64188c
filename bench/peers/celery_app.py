"""Celery with Redis doing the bench work: a no-op task and a one-row-write task."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from bench.marks import mark

BROKER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/writegate_bench")

app = Celery("bench", broker=BROKER)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
_conn: Any = None


@app.task(name="bench.noop")
def noop() -> None:
    """Do nothing but leave a timing mark."""
    mark()


@app.task(name="bench.row")
def row(session_id: str, entity_number: str) -> None:
    """Write one business row to PostgreSQL (committed) per task."""
    global _conn
    mark()
    if _conn is None:
        import psycopg

        _conn = psycopg.connect(PG_URL, autocommit=True)
    _conn.execute(
        "INSERT INTO bench_peer_rows (session_id, entity_number) VALUES (%s, %s)",
        (session_id, entity_number),
    )
