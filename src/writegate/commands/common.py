"""What every command needs: settings with one-line errors, output, and the database checks."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_settings import BaseSettings
    from rich.console import Console
    from sqlalchemy import Connection, Engine

    from writegate.core.services import Services
    from writegate.settings import Settings

#: exit status of a bad setting or an unusable database URL (as for a bad option)
USAGE = 2


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line on stderr and exit."""
    sys.stderr.write(f"writegate: {message}\n")
    raise typer.Exit(code)


def bad_settings(exc: ValidationError, prefix: str) -> NoReturn:
    """One line per bad value of a settings class, then exit status 2."""
    for error in exc.errors():
        name = prefix + "_".join(str(p) for p in error["loc"][:1]).upper()
        message = error["msg"].removeprefix("Value error, ")
        # A database URL may carry a password: never echo it.
        shown = "" if name.endswith("_DATABASE_URL") else f"={error['input']!r}"
        sys.stderr.write(f"writegate: bad setting {name}{shown}: {message}\n")
    raise typer.Exit(USAGE)


def load_settings() -> Settings:
    """The process settings; a bad one is a single line on stderr and exit status 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from writegate.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        bad_settings(exc, "WRITEGATE_")
    except SettingsError as exc:
        fail(f"bad setting: {str(exc).splitlines()[0]}", USAGE)


def module_settings(settings: Settings) -> list[BaseSettings]:
    """Each enabled module's own settings, read now: a bad one is one line, not a traceback."""
    from pydantic import ValidationError

    from writegate.commands.configdoc import SETTINGS_CLASSES, load_class

    found = []
    for target in SETTINGS_CLASSES:
        module = target.partition(":")[0].split(".")
        if module[:2] == ["writegate", "modules"] and module[2] in settings.modules:
            cls = load_class(target)
            try:
                found.append(cls())
            except ValidationError as exc:
                bad_settings(exc, str(cls.model_config.get("env_prefix", "")))
    return found


def check_module_settings(settings: Settings) -> None:
    """Load each enabled module and read its own settings now: a module that does not load,
    or a bad setting of one, is one line (exit 2), not a traceback."""
    from writegate.startup import import_module

    for name in settings.modules:
        try:
            found = import_module(name)
        except ImportError as exc:
            fail(f"bad setting WRITEGATE_MODULES: cannot load {name!r}: {exc}", USAGE)
        if not callable(getattr(found, "create", None)):
            fail(
                f"bad setting WRITEGATE_MODULES: {name!r} is no writegate module (no create)", USAGE
            )
    module_settings(settings)


@functools.cache
def console() -> Console:
    """Rich console for tables, imported on first output."""
    from rich.console import Console

    return Console()


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Plain columns as wide as their values on stdout: nothing is cut, whatever the terminal
    (or a pipe)."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for row in [header, *rows]:
        line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        sys.stdout.write(line + "\n")


def shown(value: str) -> str:
    """A value for rich output as its text: `[` in a name is not markup."""
    from rich.markup import escape

    return escape(value)


def setup_logging(level: str, fmt: str = "auto") -> dict[str, Any]:
    """One structured log format for writegate's and uvicorn's loggers; uvicorn's config."""
    from writegate.core.observability.logging import FORMATS
    from writegate.core.observability.logging import setup_logging as setup

    if fmt not in FORMATS:
        fail(f"--log-format must be one of {', '.join(FORMATS)}, not {fmt!r}", code=2)
    return setup(level, fmt)


def version_dirs() -> list[Path]:
    """The core's and every bundled module's Alembic version directories (as app.py's)."""
    root = Path(__file__).parent.parent
    dirs = [root / "migrations" / "versions"]
    dirs += sorted(d for d in (root / "modules").glob("*/migrations") if d.is_dir())
    return dirs


def shown_url(url: str) -> str:
    """A database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def check_connects(settings: Settings) -> None:
    """Connect once (without creating anything but an SQLite file); one line if it fails."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    from writegate.core.db import normalize_url

    engine = create_engine(normalize_url(settings.database_url), poolclass=NullPool)
    # SQLite answers `SELECT 1` without reading the file: read its schema, which a file that
    # is not a database fails.
    probe = "SELECT 1 FROM sqlite_master LIMIT 1" if engine.dialect.name == "sqlite" else "SELECT 1"
    try:
        with engine.connect() as conn:
            conn.execute(text(probe))
    except DBAPIError as exc:
        fail(
            f"cannot use database {shown_url(settings.database_url)}: {_reason(exc)}",
            USAGE,
        )
    finally:
        engine.dispose()


def _checked(settings: Settings) -> tuple[Engine, Connection]:
    """A connection to the database once it is known to be at this release's schema.

    The engine is writegate's own (`build_engine`: SQLite's pragmas, BEGIN IMMEDIATE for
    writers) without a pool: a command's write waits on a running server's lock, not fails.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from writegate.core.db.engine import build_engine, normalize_url
    from writegate.core.migrations import SchemaState, schema_state

    url = normalize_url(settings.database_url)
    shown = shown_url(url)
    hint = "run `writegate migrate` (or check WRITEGATE_DATABASE_URL)"
    if make_url(url).get_backend_name() == "sqlite":
        path = make_url(url).database or ""
        if not Path(path).is_file():
            fail(f"no database file at {path}: {hint}")
        if Path(path).stat().st_size == 0:
            fail(f"the database {shown} has no schema: {hint}")
    engine = build_engine(url, pool_size=None)
    conn: Connection | None = None
    try:
        conn = engine.connect()
        state = schema_state(conn, version_dirs())
        conn.rollback()  # the check's read transaction: the command begins its own
        if state is SchemaState.MISSING:
            fail(f"the database {shown} has no schema: {hint}")
        if state is SchemaState.BEHIND:
            fail(f"the database {shown} is not migrated to this release: {hint}")
    except DBAPIError as exc:
        _close(engine, conn)
        fail(f"cannot use database {shown}: {_reason(exc)}", USAGE)
    except BaseException:
        _close(engine, conn)
        raise
    return engine, conn


def _close(engine: Engine, conn: Connection | None) -> None:
    if conn is not None:
        conn.close()
    engine.dispose()


@contextlib.contextmanager
def migrated_connection(settings: Settings, *, write: bool = False) -> Iterator[Connection]:
    """One plain connection (no ORM, no services) to a database at this release's schema.

    Never creates or migrates: a missing SQLite file, an empty database or one behind the
    scripts is one line telling the operator to run `writegate migrate`. With `write`, each
    transaction the command begins (`conn.begin()`) is a writer's (BEGIN IMMEDIATE on SQLite).
    """
    engine, conn = _checked(settings)
    if write:
        conn.execution_options(writegate_write=True)
    try:
        with conn:
            yield conn
    finally:
        engine.dispose()


def existing_services(settings: Settings) -> Services:
    """Services on an existing database at this release's schema; never creates or migrates."""
    _close(*_checked(settings))
    from writegate.core.services import Services

    return Services.build(settings)


def read_write_services(settings: Settings, *, migrate: bool = True) -> Services:
    """Services with every module loaded, then the schema migrated if asked and auto_migrate."""
    from writegate.core.services import Services
    from writegate.startup import load_modules
    from writegate.startup import migrate as do_migrate

    services = Services.build(settings)
    services.extras["modules"] = load_modules(services)
    if migrate and settings.auto_migrate:
        do_migrate(services)
    return services
