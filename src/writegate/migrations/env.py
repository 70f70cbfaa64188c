"""Alembic env: runs with the connection writegate hands over, or builds one from the URL."""

from __future__ import annotations

import contextlib
import importlib

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from writegate.core.db import Base
from writegate.settings import ALL_MODULES

config = context.config

# Every model must be imported so autogenerate sees the whole schema. An upgrade needs none
# of them (the scripts spell out their tables), and importing a model imports its whole
# module (routes, schemas, connectors), which would then stay in the process's memory.
if config.attributes.get("import_models", True):
    importlib.import_module("writegate.core.models")
    for _name in ALL_MODULES:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"writegate.modules.{_name}.models")
target_metadata = Base.metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Run migrations online, on writegate's connection or one built from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _migrate(conn)


run()
