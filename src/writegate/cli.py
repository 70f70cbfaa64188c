"""The `writegate` command line: parses arguments, then imports only the command it runs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import writegate
from writegate.commands.common import USAGE
from writegate.commands.lazy import LazyGroup
from writegate.core.exceptions import ConfigError

app = typer.Typer(
    cls=LazyGroup,
    help="writegate: trustworthy write APIs on one durable job core.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"writegate {writegate.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """writegate: trustworthy write APIs on one durable job core."""


def main() -> None:
    """Console-script entry point."""
    try:
        typer.main.get_command(app).main(prog_name="writegate")
    except ConfigError as exc:  # a module's setting, found as the module loads
        sys.stderr.write(f"writegate: cannot start: {exc}\n")
        sys.exit(USAGE)
    except Exception as exc:
        # A module's own command reading a bad setting: the same one line as every command.
        from writegate.commands.common import bad_settings
        from writegate.commands.configdoc import SETTINGS_CLASSES, load_class

        pydantic_core = sys.modules.get("pydantic_core")
        if pydantic_core is None or not isinstance(exc, pydantic_core.ValidationError):
            raise
        for target in SETTINGS_CLASSES:
            if target.endswith(f":{exc.title}"):
                prefix = load_class(target).model_config.get("env_prefix", "")
                try:
                    bad_settings(exc, str(prefix))
                except typer.Exit as done:
                    sys.exit(done.exit_code)
        raise
