"""The database layer: engine, sessions, the group commit and hot-statement shortcuts.

Names are imported on first use: the CLI reads a table through `engine` and `metadata`
without loading the ORM, the group commit or the fast paths.
"""

from typing import TYPE_CHECKING

from writegate.core.lazy import exports

if TYPE_CHECKING:
    from writegate.core.db.base import Base
    from writegate.core.db.batch import BatchInsert, BatchUpdate
    from writegate.core.db.batch_run import BatchWrite
    from writegate.core.db.commit_actions import after_commit
    from writegate.core.db.database import Database
    from writegate.core.db.engine import build_engine, normalize_url
    from writegate.core.db.fastsql import DriverStatement, driver_fetch, prepared
    from writegate.core.db.group_commit import GroupCommit
    from writegate.core.db.invalues import InValues, ValueList
    from writegate.core.db.metadata import NAMING
    from writegate.core.db.reads import Page, Reader, Reads

__all__ = [
    "NAMING",
    "Base",
    "BatchInsert",
    "BatchUpdate",
    "BatchWrite",
    "Database",
    "DriverStatement",
    "GroupCommit",
    "InValues",
    "Page",
    "Reader",
    "Reads",
    "ValueList",
    "after_commit",
    "build_engine",
    "driver_fetch",
    "normalize_url",
    "prepared",
]

__getattr__ = exports(
    globals(),
    {
        "NAMING": "metadata",
        "after_commit": "commit_actions",
        "Base": "base",
        "Database": "database",
        "build_engine": "engine",
        "normalize_url": "engine",
        "BatchInsert": "batch",
        "BatchUpdate": "batch",
        "DriverStatement": "fastsql",
        "InValues": "invalues",
        "ValueList": "invalues",
        "driver_fetch": "fastsql",
        "prepared": "fastsql",
        "BatchWrite": "batch_run",
        "GroupCommit": "group_commit",
        "Page": "reads",
        "Reader": "reads",
        "Reads": "reads",
    },
)
