"""A bounded load run over every API: no 5xx, no lost or doubled write, memory flat.

`make soak` runs the same scenarios longer and with more clients (bench/soak.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.harness import fresh_database
from tests.system.apis import present_modules
from tests.system.load import SCENARIOS, load_serve, rss_growth_ok

CLIENTS = int(os.environ.get("WRITEGATE_LOAD_CLIENTS", "200"))
SECONDS = float(os.environ.get("WRITEGATE_LOAD_SECONDS", "20"))


def test_load_all_apis_no_5xx_no_lost_writes_flat_memory(tmp_path: Path) -> None:
    """A few hundred concurrent clients over every module against a real `serve` process."""
    modules = present_modules()
    missing = [m for m in modules if m not in SCENARIOS]
    assert not missing, f"no load scenario for {missing}"
    with fresh_database(str(tmp_path)) as url:
        figures, problems = load_serve(
            url, modules, clients=CLIENTS, seconds=SECONDS, log=str(tmp_path / "serve.log")
        )
    print(f"\nload ({url.split(':')[0]}): {figures.summary()}")
    assert figures.errors == [], figures.errors[:10]
    assert not [s for s in figures.statuses if s.startswith("5")], figures.statuses
    assert problems == [], problems
    assert set(figures.per_module) == set(modules)
    assert rss_growth_ok(figures.rss_kib), figures.rss_kib
