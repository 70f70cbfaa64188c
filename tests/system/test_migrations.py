"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.harness import Server
from writegate.core.db import Base


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
