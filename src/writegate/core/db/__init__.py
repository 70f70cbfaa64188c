"""The database layer: engine, sessions, the group commit and hot-statement shortcuts."""

from writegate.core.db.base import NAMING, Base
from writegate.core.db.database import Database
from writegate.core.db.engine import build_engine, normalize_url
from writegate.core.db.fastsql import BatchInsert, DriverStatement, InValues, driver_fetch
from writegate.core.db.group_commit import BatchWrite, GroupCommit
from writegate.core.db.reads import Page, Reader, Reads

__all__ = [
    "NAMING",
    "Base",
    "BatchInsert",
    "BatchWrite",
    "Database",
    "DriverStatement",
    "GroupCommit",
    "InValues",
    "Page",
    "Reader",
    "Reads",
    "build_engine",
    "driver_fetch",
    "normalize_url",
]
