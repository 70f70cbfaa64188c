"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.harness import Server, fresh_database, unmigrated
from writegate.core.db import Base
from writegate.core.migrations import at_head, current, revision_graph, upgrade


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
