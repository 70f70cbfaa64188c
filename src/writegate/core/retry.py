"""Exponential backoff with jitter."""

from __future__ import annotations

import random


def backoff_seconds(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Delay before retry number `attempt` (1-based): equal-jitter exponential backoff."""
    if base <= 0:
        return 0.0
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    r = rng or random
    return float(ceiling / 2 + r.uniform(0, ceiling / 2))
