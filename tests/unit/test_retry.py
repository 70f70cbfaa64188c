"""Backoff arithmetic."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from writegate.core.retry import backoff_seconds


@given(
    attempt=st.integers(min_value=1, max_value=60),
    base=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.001, max_value=3600),
    seed=st.integers(),
)
def test_backoff_is_jittered_within_half_to_full_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    """Delay lies in [ceiling/2, ceiling] where ceiling = min(cap, base * 2^(attempt-1))."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    delay = backoff_seconds(attempt, base, cap, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_grows_until_capped() -> None:
    """Without jitter variance the ceilings double and stop at the cap."""
    rng = random.Random(1)
    highs = [max(backoff_seconds(a, 1.0, 30.0, rng) for _ in range(200)) for a in range(1, 8)]
    assert highs[0] <= 1.0
    assert highs[3] > 4.0
    assert all(h <= 30.0 for h in highs)


def test_zero_base_means_no_delay() -> None:
    """A zero base disables backoff."""
    assert backoff_seconds(5, 0, 100) == 0.0
