"""Migration ikonomikal_0002 turns the clear process tokens of a live database into digests."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import inspect, text

from tests.harness import unmigrated
from writegate.core.migrations import upgrade


def test_upgrade_hashes_outstanding_tokens_and_drops_the_clear_column(tmp_path: Any) -> None:
    """A token issued before the upgrade is still found by its digest afterwards."""
    with unmigrated(str(tmp_path)) as (svc, dirs):
        upgrade(svc.db, dirs, "ikonomikal_0001")
        with svc.db.write() as s:
            s.execute(
                text(
                    "INSERT INTO ikonomikal_sessions (id, sess_hash, subs_id, principal,"
                    " int_gid, created_at, last_used_at) VALUES (1, 'h', '2000001', 'u',"
                    " 'G', '2026-12-01 10:00:00', '2026-12-01 10:00:00')"
                )
            )
            s.execute(
                text(
                    "INSERT INTO ikonomikal_proc_tokens (session_id, program, proc_id, token,"
                    " issued_at, expires_at) VALUES (1, 'SS07', 1, 'clear-token-value',"
                    " '2026-12-01 10:00:00', '2026-12-01 11:00:00')"
                )
            )
        upgrade(svc.db, dirs)
        with svc.db.read() as s:
            names = {
                c["name"] for c in inspect(s.connection()).get_columns("ikonomikal_proc_tokens")
            }
            digests = list(s.scalars(text("SELECT token_hash FROM ikonomikal_proc_tokens")))
        assert "token" not in names
        assert digests == [hashlib.sha256(b"clear-token-value").hexdigest()]
