"""The `writegate` command line: parses arguments, then imports only the command it runs."""

from __future__ import annotations

from typing import Annotated

import typer

import writegate
from writegate.commands.lazy import LazyGroup

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
    typer.main.get_command(app).main(prog_name="writegate")
