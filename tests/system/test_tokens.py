"""Single-use process tokens on a real database."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.harness import Server, uid
from writegate.core.exceptions import TokenError
from writegate.core.tokens import ProcessTokenRow


def _issue(server: Server, **binding: str) -> str:
    with server.services.db.write() as s:
        return server.services.tokens.issue(s, **binding).value


def _consume(server: Server, value: str, **binding: str) -> str:
    try:
        with server.services.db.write() as s:
            server.services.tokens.consume(s, value, **binding)
    except TokenError as exc:
        return exc.reason
    return "ok"


def _binding() -> dict[str, str]:
    return {"tenant": uid("t-"), "subject": uid("sess-"), "scope": "SS07", "purpose": "1"}


def test_token_is_used_once_and_stored_hashed(server: Server) -> None:
    """First use succeeds, the second is refused; only a hash is stored."""
    b = _binding()
    value = _issue(server, **b)
    assert len(value) >= 43  # 256 bits, URL-safe base64
    with server.services.db.read() as s:
        stored = list(s.scalars(select(ProcessTokenRow.token_hash)))
    assert value not in stored
    assert _consume(server, value, **b) == "ok"
    assert _consume(server, value, **b) == "used"


@pytest.mark.parametrize("field", ["tenant", "subject", "scope", "purpose"])
def test_token_is_bound(server: Server, field: str) -> None:
    """A token used for another tenant, session, program or purpose is refused, not burnt."""
    b = _binding()
    value = _issue(server, **b)
    assert _consume(server, value, **{**b, field: "other"}) == "mismatch"
    assert _consume(server, value, **b) == "ok"


def test_unknown_token(server: Server) -> None:
    """A made-up token does not exist."""
    assert _consume(server, "not-a-token", **_binding()) == "missing"


def test_expiry_is_enforced_server_side(server: Server, clock: Any) -> None:
    """A token is refused once its TTL has passed on the server's clock."""
    b = _binding()
    value = _issue(server, **b)
    clock.advance(timedelta(seconds=server.settings.token_ttl_seconds - 1))
    other = _issue(server, **b)
    clock.advance(timedelta(seconds=2))
    assert _consume(server, value, **b) == "expired"
    assert _consume(server, other, **b) == "ok"


def test_rolled_back_consumption_gives_the_token_back(server: Server) -> None:
    """A failed save (rollback) does not burn the token."""
    b = _binding()
    value = _issue(server, **b)

    def failing_save() -> None:
        with server.services.db.write() as s:
            server.services.tokens.consume(s, value, **b)
            raise RuntimeError("the save failed after the token check")

    with pytest.raises(RuntimeError):
        failing_save()
    assert _consume(server, value, **b) == "ok"


def test_twenty_concurrent_uses_exactly_one_wins(server: Server) -> None:
    """Of 20 racing consumers of one token, exactly one succeeds."""
    b = _binding()
    value = _issue(server, **b)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: _consume(server, value, **b), range(20)))
    assert outcomes.count("ok") == 1, outcomes
    assert outcomes.count("used") == 19


def test_core_tokens_are_purged_a_day_after_expiry(server: Server, clock: Any) -> None:
    """The core's token table drops tokens once they have been expired for a day."""
    with server.services.db.write() as s:
        old = server.services.tokens.issue(s, tenant="t", subject="a", scope="S", purpose="1")
    clock.advance(timedelta(hours=24, minutes=61))
    with server.services.db.write() as s:
        new = server.services.tokens.issue(s, tenant="t", subject="a", scope="S", purpose="1")
    assert server.run_maintenance()["core.expired_tokens"] is not None
    with server.services.db.read() as s:
        left = set(s.scalars(select(ProcessTokenRow.expires_at)))
    assert old.expires_at not in left
    assert new.expires_at in left
