"""The dispatcher's LISTEN connection on PostgreSQL: a NOTIFY on the jobs channel means claim."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Container
from typing import Any

from writegate.core.jobs import NOTIFY_CHANNEL

log = logging.getLogger("writegate.worker")


class Listener:
    """The dispatcher's LISTEN connection (PostgreSQL), read by the dispatcher itself."""

    def __init__(self, dsn: str, name: str) -> None:
        self._dsn = dsn
        #: its application_name, so pg_stat_activity tells which worker a LISTEN backend serves
        self.name = name[:63]
        self._conn: Any = None

    def ensure(self) -> tuple[int | None, bool]:
        """The socket to watch (None while the database is unreachable), and if it is new."""
        import psycopg

        if self._conn is not None:
            try:
                return self._conn.fileno(), False
            except psycopg.Error:
                self.close()
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=5, application_name=self.name
            )
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error:
            log.warning("LISTEN connection failed; polling until it is back", exc_info=True)
            return None, False
        self._conn = conn
        return conn.fileno(), True

    def drain(self, own: Container[int] = ()) -> bool:
        """Read what arrived; True if a NOTIFY came from a backend not in `own` (or the
        connection was lost: claim then, the wake-ups of the outage went to no one)."""
        import psycopg

        if self._conn is None:
            return False
        foreign = False
        try:
            pgconn = self._conn.pgconn
            pgconn.consume_input()
            while (notify := pgconn.notifies()) is not None:
                foreign = foreign or notify.be_pid not in own
        except psycopg.Error:
            log.warning("LISTEN connection lost; reconnecting", exc_info=True)
            self.close()
            return True
        return foreign

    def close(self) -> None:
        """Close the connection (it is reopened by the next ensure())."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
