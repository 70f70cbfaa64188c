"""What the A/B tools (`accept_ab`, `api_ab`) share: a fresh database per side, rounds in
alternating order, and each side's ratios to the ceiling."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable

from bench import run


def fresh_url(db: str, prefix: str, side: str) -> str:
    """A new empty database for one side: PostgreSQL `{prefix}_{side}` (recreated), or a new
    SQLite file."""
    if db == "pg":
        database = f"{prefix}_{side.lower()}"
        run.recreate_pg(database)
        return f"{run.PG_BASE}/{database}"
    return f"sqlite:///{run.TMP}/{prefix}_{side}_{uuid.uuid4().hex[:8]}.db"


def alternate(
    rounds: int, names: list[str], measure: Callable[[str], float]
) -> dict[str, list[float]]:
    """measure(name) for every name, `rounds` times, the order reversed every other round
    (this machine's speed drifts: a ratio means most when its two sides ran seconds apart)."""
    got: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            got[name].append(measure(name))
        print(r, {name: round(got[name][-1]) for name in names}, flush=True)
    return got


def print_ratios(got: dict[str, list[float]], baseline: str = "ceiling") -> None:
    """Each side's ratio to the baseline in every round, and their median."""
    for name, values in got.items():
        if name == baseline:
            continue
        ratios = [x / c for x, c in zip(values, got[baseline], strict=True)]
        each = " ".join(f"{x:.2f}" for x in ratios)
        print(f"{name:10} median ratio {statistics.median(ratios):.3f}  rounds {each}")
