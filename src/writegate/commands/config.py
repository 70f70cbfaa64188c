"""`writegate config ...`: the settings a process would use, and their reference doc."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from writegate.commands.common import fail, load_settings, shown_url

app = typer.Typer(
    help="Show the settings in effect; generate docs/configuration.md.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


@app.command("show")
def show() -> None:
    """Print every core setting as it would be used here (environment, then .env)."""
    settings = load_settings()
    for name, value in settings.model_dump().items():
        if name == "database_url":
            value = shown_url(value)
        elif isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        sys.stdout.write(f"WRITEGATE_{name.upper()}={value}\n")


@app.command("docs")
def docs(
    check: Annotated[
        Path | None,
        typer.Option(help="Exit 1 if this file differs from what would be generated."),
    ] = None,
) -> None:
    """Print docs/configuration.md, generated from the settings classes."""
    from writegate.commands.configdoc import render

    text = render()
    if check is None:
        sys.stdout.write(text)
        return
    if not check.is_file() or check.read_text(encoding="utf-8") != text:
        fail(f"{check} is out of date: run `writegate config docs > {check}`")
