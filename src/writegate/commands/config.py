"""`writegate config ...`: the settings a process would use, and their reference doc."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from writegate.commands.common import fail, load_settings, module_settings, shown_url

app = typer.Typer(
    help="Show the settings in effect; generate docs/configuration.md.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


@app.command("show")
def show() -> None:
    """Print every setting as a process here would use it: the core's, then each enabled
    module's (environment, then .env; secrets masked)."""
    settings = load_settings()
    modules = module_settings(settings)  # every value checked before any is printed
    _print(settings.model_dump(), "WRITEGATE_")
    for module in modules:
        _print(module.model_dump(), str(module.model_config.get("env_prefix", "")))


def _print(values: dict[str, Any], prefix: str) -> None:
    for name, value in values.items():
        if name == "database_url":
            value = shown_url(value)
        elif isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif value is None:
            value = ""
        sys.stdout.write(f"{prefix}{name.upper()}={value}\n")


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
