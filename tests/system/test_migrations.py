"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.harness import Server, fresh_database, unmigrated
from writegate.core.db import Base
from writegate.core.migrations import at_head, current, revision_graph, upgrade

ROOT = Path(__file__).resolve().parents[2]


def test_migrations_match_models(server: Server) -> None:
    """Regression guard: a model change without a migration fails here."""
    with server.services.db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_migrate_is_idempotent(server: Server) -> None:
    """Running the upgrade again on an up-to-date database changes nothing."""
    from writegate.app import migrate

    migrate(server.services)
    migrate(server.services)


def test_at_head_only_when_every_revision_is_applied(tmp_path: Any) -> None:
    """The cheap head check says yes after a full upgrade and no before or part-way."""
    with unmigrated(str(tmp_path)) as (svc, dirs):
        assert not at_head(svc.db, dirs)  # no version table yet
        upgrade(svc.db, dirs, "core@head")
        assert not at_head(svc.db, dirs)
        upgrade(svc.db, dirs)
        assert at_head(svc.db, dirs)
        graph = revision_graph(dirs) or {}
        parents = {p for ps in graph.values() for p in ps}
        assert current(svc.db, dirs) == set(graph) - parents  # every branch's head


def test_revision_graph_gives_up_on_what_it_cannot_read(tmp_path: Any) -> None:
    """A script whose revision is not a plain literal makes the check defer to Alembic."""
    (tmp_path / "ok.py").write_text('revision = "a"\ndown_revision = None\n')
    assert revision_graph([tmp_path]) == {"a": ()}
    (tmp_path / "b.py").write_text('revision: str = "b"\ndown_revision = ("a",)\n')
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "b"\ndepends_on = ["a"]\n')
    assert revision_graph([tmp_path]) == {"a": (), "b": ("a",), "c": ("b", "a")}
    (tmp_path / "d.py").write_text('revision = make_id()\ndown_revision = "c"\n')
    assert revision_graph([tmp_path]) is None


def test_start_at_head_does_not_load_alembic(server: Server) -> None:
    """A process that finds the schema up to date never imports Alembic (memory stays low)."""
    code = (
        "import sys; from writegate.commands.common import load_settings, read_write_services; "
        "read_write_services(load_settings()); "
        "sys.exit('alembic' in sys.modules)"
    )
    env = {**os.environ, **server.env}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


def test_worker_start_migrates_a_new_database_in_a_child_process(tmp_path: Any) -> None:
    """`writegate worker` on a new database upgrades it without loading Alembic itself."""
    code = (
        "import sys; from writegate.commands.server import worker_services; "
        "from writegate.commands.common import load_settings; "
        "from writegate.app import migration_dirs; from writegate.core.migrations import at_head; "
        "s = worker_services(load_settings()); assert at_head(s.db, migration_dirs(s.settings)); "
        "sys.exit('alembic' in sys.modules)"
    )
    with fresh_database(str(tmp_path)) as url:
        env = {**os.environ, "WRITEGATE_DATABASE_URL": url}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


#: what a migration's upgrade() may not do unless it declares `contract = True`: remove or
#: rename what the code of the release before it reads or writes
_REMOVES = ("drop_table", "drop_column")
_REMOVES_SQL = re.compile(r"\bDROP\s+(TABLE|FUNCTION|COLUMN|VIEW)\b|\bRENAME\b", re.IGNORECASE)


def _removals(path: Path) -> list[str]:
    """What the upgrade() of a migration file removes or renames."""
    tree = ast.parse(path.read_text())
    (upgrade_fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"]
    found = []
    for node in ast.walk(upgrade_fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in _REMOVES or (
                name == "alter_column" and any(k.arg == "new_column_name" for k in node.keywords)
            ):
                found.append(name)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [m.group(0) for m in _REMOVES_SQL.finditer(node.value)]
    return found


def _declares_contract(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "contract" for t in n.targets)
        and isinstance(n.value, ast.Constant)
        and n.value.value is True
        for n in tree.body
    )


def test_only_contract_steps_remove_what_older_code_uses() -> None:
    """A rolling upgrade runs the release before next to the migrated schema
    (docs/deployment.md): a migration that drops or renames a table, column or function
    breaks it (an older jef-one accept called a dropped function, an older Ikonomikal login
    read a dropped table), so it must say so with `contract = True`, which the upgrade
    procedure names. These three are the history's; a new one is a decision, not an
    accident."""
    dirs = [ROOT / "src/writegate/migrations/versions"]
    dirs += sorted((ROOT / "src/writegate/modules").glob("*/migrations"))
    files = sorted(f for d in dirs for f in d.glob("*.py"))
    assert len(files) > 20
    removing = {f.stem for f in files if _removals(f)}
    declared = {f.stem for f in files if _declares_contract(f)}
    assert removing == declared, (removing - declared, declared - removing)
    assert declared == {
        "ikonomikal_0002_token_digest",
        "ikonomikal_0005_core_login_failures",
        "jef_one_0003_drop_verified_job_function",
    }
