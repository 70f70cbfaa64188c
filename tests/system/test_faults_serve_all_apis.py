"""SIGKILL of `writegate serve` under load on all four APIs: accepted means durable.

Every answer that said yes - 202 / `is_accepted` (jef-one), `rspID` 0 (Ikonomikal), 200 with
a sync Id (BokaMera), `status: ok` (ABS) - must be in the database after the restart and
its job (if any) must complete; nothing may be stored that no client sent.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness import fresh_database
from tests.system.apis import present_modules
from tests.system.load import load_serve


def test_sigkill_serve_under_load_on_every_api(tmp_path: Path) -> None:
    """60 clients on every API; serve is killed mid-run and restarted; nothing accepted is lost."""
    modules = present_modules()
    with fresh_database(str(tmp_path)) as url:
        figures, problems = load_serve(
            url, modules, clients=60, seconds=12, log=str(tmp_path / "serve.log"), kill_after=5
        )
    print(f"\nkill under load: {figures.summary()}")
    assert problems == [], problems
    assert set(figures.per_module) == set(modules), "every API answered before and after"
    assert figures.statuses["error"] > 0, "the kill should have cut some requests off"
    assert not [s for s in figures.statuses if s.startswith("5")], figures.statuses
