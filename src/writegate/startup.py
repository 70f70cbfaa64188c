"""What every process builds at start-up: the enabled modules' job sides, housekeeping, schema.

Nothing here imports FastAPI or a module's web side: a standalone `writegate worker` loads
this file, never `writegate.app`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from writegate.core import login_limits
from writegate.core.maintenance import Maintenance, Task, check_vacuum
from writegate.core.migrations import upgrade
from writegate.core.module import Module
from writegate.core.services import Services
from writegate.settings import Settings


def import_module(name: str) -> ModuleType:
    """An enabled module's package; a dotted name loads an out-of-tree one (benchmarks, tests)."""
    return importlib.import_module(name if "." in name else f"writegate.modules.{name}")


def load_modules(services: Services) -> list[Module]:
    """Build every enabled module's job side, registering its job kinds."""
    modules = []
    for name in services.settings.modules:
        module: Module = import_module(name).create(services)
        for spec in module.jobs:
            services.registry.add(spec)
        modules.append(module)
    return modules


def maintenance(services: Services, modules: list[Module]) -> Maintenance:
    """The housekeeping every worker process runs: the core's and each module's, after the
    check of the database server's own upkeep."""
    tasks: list[tuple[str, Task]] = [
        ("core.expired_tokens", services.purge_expired_tokens),
        ("core.prune_jobs", services.prune_jobs),
        ("core.console_login_failures", login_limits.console(services).purge),
    ]
    for m in modules:
        tasks += m.maintenance
    checks: list[tuple[str, Task]] = [("core.vacuum", lambda: check_vacuum(services.db))]
    return Maintenance(tasks, services.settings.maintenance_interval, checks)


def migration_dirs(settings: Settings) -> list[Path]:
    """The core's and every bundled module's Alembic version directories.

    All of them, enabled or not: a database migrated by a process with more modules must
    still be readable by one with fewer.
    """
    root = Path(__file__).parent
    dirs = [root / "migrations" / "versions"]
    dirs += sorted(d for d in (root / "modules").glob("*/migrations") if d.is_dir())
    return dirs


def migrate(services: Services) -> None:
    """Bring the schema up to date (idempotent, safe with several processes)."""
    upgrade(services.db, migration_dirs(services.settings))


@contextlib.contextmanager
def tuned_garbage_collector(young_threshold: int) -> Iterator[None]:
    """Freeze the start-up heap; collect the youngest generation once the tracked objects
    have grown by `young_threshold` since the last collection."""
    # Routes, schemas and mappers live as long as the process: a full collection under load
    # then walks only what requests allocate, not the whole start-up heap (long pauses).
    gc.collect()
    gc.freeze()
    # A collection walks every young object still alive, and a group-commit batch keeps its
    # callers' requests alive until its COMMIT: at Python's 700, `serve` collected every few
    # requests, 75 us each, and found nothing to free (5% of its event loop under load).
    before = gc.get_threshold()
    gc.set_threshold(young_threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
