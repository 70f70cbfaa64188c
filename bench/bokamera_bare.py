"""The BokaMera sync's baseline: a bare script that pages through Axema Vaka and bulk-inserts.

    python -m bench.bokamera_bare --vaka http://127.0.0.1:8900 --db sqlite:///x.db [--page-size 200]

It reads every page of `GET /api/v1/users` with httpx (Basic auth, as writegate's
connector does) and inserts each page's users with one executemany and one COMMIT into a
table shaped like writegate's `bokamera_customers` (same columns, unique (company, Vaka user
id), index (company, email)); SQLite in WAL mode with synchronous=FULL, as writegate opens
it. No matching, no job, no progress record: the least a sync has to do. Prints one JSON
line: users, seconds, users_per_s, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg

TABLE = "bench_bare_customers"
COLUMNS = (
    "id, company_id, vaka_user_id, firstname, lastname, email, phone, access_card, "
    "created_at, updated_at"
)
DDL = (
    f"CREATE TABLE {TABLE} (id varchar(36) PRIMARY KEY, company_id varchar(36) NOT NULL, "
    "vaka_user_id varchar(100), firstname varchar(100), lastname varchar(100), "
    "email varchar(200), phone varchar(50), access_card varchar(50), "
    "created_at timestamp NOT NULL, updated_at timestamp NOT NULL, "
    f"CONSTRAINT uq_{TABLE}_vaka UNIQUE (company_id, vaka_user_id))",
    f"CREATE INDEX ix_{TABLE}_email ON {TABLE} (company_id, email)",
)


def connect(db_url: str) -> Any:
    """A DB-API connection to a sqlite:/// file or a postgresql:// database."""
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn
    return psycopg.connect(db_url)


def run(vaka: str, db_url: str, page_size: int, user: str, password: str) -> dict[str, float]:
    """Sync every Vaka user into a fresh table; users, seconds and users/s."""
    conn = connect(db_url)
    sqlite = isinstance(conn, sqlite3.Connection)
    mark = "?" if sqlite else "%s"
    insert = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ({', '.join([mark] * 10)})"
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    for statement in DDL:
        cur.execute(statement)
    conn.commit()
    company = str(uuid.uuid4())
    users = 0
    t0 = time.perf_counter()
    with httpx.Client(base_url=vaka, auth=(user, password), timeout=30) as client:
        page, more = 1, True
        while more:
            r = client.get("/api/v1/users", params={"page": page, "pageSize": page_size})
            r.raise_for_status()
            doc = r.json()
            now = datetime.now(UTC).replace(tzinfo=None)
            rows = [
                (
                    str(uuid.uuid4()),
                    company,
                    u["id"],
                    u.get("firstName"),
                    u.get("lastName"),
                    u.get("email"),
                    u.get("phone"),
                    u.get("cardNumber"),
                    now,
                    now,
                )
                for u in doc["users"]
            ]
            if sqlite:
                cur.execute("BEGIN")
            cur.executemany(insert, rows)
            conn.commit()
            users += len(rows)
            page, more = page + 1, bool(doc.get("hasMore"))
    seconds = time.perf_counter() - t0
    conn.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "users": users,
        "seconds": seconds,
        "users_per_s": users / seconds,
        "peak_rss_mb": peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.bokamera_bare", description=__doc__)
    ap.add_argument("--vaka", required=True, help="simulator base URL")
    ap.add_argument("--db", required=True, help="sqlite:///path or postgresql://...")
    ap.add_argument("--page-size", type=int, default=200)
    ap.add_argument("--username", default="vaka")
    ap.add_argument("--password", default="vaka")
    args = ap.parse_args()
    result = run(args.vaka, args.db, args.page_size, args.username, args.password)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
