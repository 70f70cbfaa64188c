"""A bounded load run over every API: no 5xx, no lost or doubled write, memory flat."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.harness import fresh_database
from tests.system.apis import present_modules
from tests.system.faults import serve_env, serve_process
from tests.system.load import SCENARIOS, drain, run_load
from writegate.core.db import Database
from writegate.core.services import Services
from writegate.settings import Settings

CLIENTS = int(os.environ.get("WRITEGATE_LOAD_CLIENTS", "200"))
SECONDS = float(os.environ.get("WRITEGATE_LOAD_SECONDS", "20"))


def test_load_all_apis_no_5xx_no_lost_writes_flat_memory(tmp_path: Path) -> None:
    """A few hundred concurrent clients over every module against a real `serve` process."""
    modules = present_modules()
    missing = [m for m in modules if m not in SCENARIOS]
    assert not missing, f"no load scenario for {missing}"
    with fresh_database(str(tmp_path)) as url:
        env = serve_env(url, modules, worker_concurrency=8, db_pool_size=20)
        services = Services.build(Settings(database_url=url, modules=modules))
        scenarios = [SCENARIOS[m]() for m in modules]
        try:
            with serve_process(env, str(tmp_path / "serve.log")) as srv:
                figures = asyncio.run(
                    run_load(
                        srv.url,
                        scenarios,
                        services,
                        clients=CLIENTS,
                        seconds=SECONDS,
                        rss=srv.rss_kib,
                    )
                )
                drain(services.db)
        finally:
            for s in scenarios:
                s.close()
            services.close()
        print(f"\nload ({url.split(':')[0]}): {figures.summary()}")
        assert figures.errors == [], figures.errors[:10]
        assert not [s for s in figures.statuses if s.startswith("5")], figures.statuses
        db = Database(url, pool_size=2)
        try:
            problems = [p for s in scenarios for p in s.verify(db)]
        finally:
            db.dispose()
        assert problems == [], problems
        assert set(figures.per_module) == set(modules)
        # Memory flat: after the warm-up third, RSS may not keep growing.
        rss = figures.rss_kib
        warm = max(rss[: len(rss) // 3])
        assert max(rss[len(rss) // 3 :]) < warm * 1.3 + 32 * 1024, (warm, rss[-10:])
