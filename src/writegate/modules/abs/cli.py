"""`writegate abs ...`: register and list client codes."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated

import typer

from writegate.commands.common import existing_services, load_settings
from writegate.modules.abs import service

if TYPE_CHECKING:
    from rich.console import Console

    from writegate.core.services import Services

app = typer.Typer(help="Elcoin ABS: client codes.", no_args_is_help=True)


@functools.cache
def _console() -> Console:
    # rich is imported on first output: serve and worker processes print nothing with it.
    from rich.console import Console

    return Console()


def _services() -> Services:
    # Like every command but migrate, serve and worker: a migrated database or one line.
    return existing_services(load_settings())


@app.command("add-client")
def add_client(
    client_code: str,
    name: Annotated[str, typer.Option(help="Display name of the customer.")] = "",
) -> None:
    """Register a client code so its tenant's principals can use it."""
    if not 1 <= len(client_code) <= 64:
        raise typer.BadParameter("a client code is 1 to 64 characters")
    services = _services()
    try:
        added = service.register_client(services, client_code, name)
    finally:
        services.close()
    from rich.markup import escape  # a code is text, not markup

    if not added:
        _console().print(f"client code {escape(client_code)} was already registered")
        return
    _console().print(f"registered client code [bold]{escape(client_code)}[/bold]")


@app.command("clients")
def clients() -> None:
    """List registered client codes."""
    services = _services()
    try:
        rows = service.list_clients(services)
    finally:
        services.close()
    from rich.markup import escape
    from rich.table import Table

    table = Table("client_code", "name", "registered")
    for row in rows:
        table.add_row(escape(row.client_code), escape(row.name), str(row.created_at)[:19])
    _console().print(table)
