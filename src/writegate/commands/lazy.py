"""Sub-commands named with their help, imported only when one of them runs."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup


@dataclass(frozen=True)
class Lazy:
    """A sub-command: "module:attr" (a typer.Typer or a command function) and its help line."""

    target: str
    help: str
    hidden: bool = False


#: every `writegate` sub-command; tests/system/test_cli_startup.py checks each help line
COMMANDS: dict[str, Lazy] = {
    "serve": Lazy(
        "writegate.commands.server:serve",
        "Run the HTTP API (with an embedded job worker unless --no-worker).",
    ),
    "worker": Lazy(
        "writegate.commands.server:worker",
        "Run a standalone job worker (scale out by starting several).",
    ),
    "migrate": Lazy("writegate.commands.server:migrate", "Create or upgrade the database schema."),
    "backup": Lazy(
        "writegate.commands.backup:backup",
        "Copy the SQLite database to a new file while writegate runs (consistent, durable).",
    ),
    "makemigration": Lazy(
        "writegate.commands.server:makemigration",
        "Autogenerate a revision for one branch (developer tool).",
        hidden=True,
    ),
    "principals": Lazy("writegate.commands.principals:app", "Manage principals (API users)."),
    "jobs": Lazy("writegate.commands.jobs:app", "Inspect and operate jobs."),
    "config": Lazy(
        "writegate.commands.config:app",
        "Show the settings in effect; generate docs/configuration.md.",
    ),
    # The bundled modules' own tools.
    "abs": Lazy("writegate.modules.abs.cli:app", "Elcoin ABS: client codes."),
    "bokamera": Lazy("writegate.modules.bokamera.cli:app", "BokaMera module tools."),
    "vaka-sim": Lazy(
        "writegate.modules.bokamera.cli:vaka_sim",
        "Run a local Axema Vaka simulator (HTTP) until interrupted.",
    ),
}


def resolve(name: str, entry: Lazy) -> Any:
    """Import the entry's target and turn it into a click command named `name`."""
    module, _, attr = entry.target.partition(":")
    target = getattr(importlib.import_module(module), attr)
    # Built inside a holder so neither gets the shell-completion options a root app has.
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name, hidden=entry.hidden)
        return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
    holder.command(name, hidden=entry.hidden)(target)
    return typer.main.get_command(holder)


class LazyGroup(TyperGroup):
    """A group whose sub-commands come from COMMANDS, imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        """Eager and lazy sub-commands, in registry order."""
        return [*self.commands, *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The named sub-command, imported now if it is lazy."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = resolve(cmd_name, COMMANDS[cmd_name])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list from the registry's help lines, importing nothing."""
        rows = [(n, c.get_short_help_str(80)) for n, c in self.commands.items() if not c.hidden]
        rows += [
            (n, e.help) for n, e in COMMANDS.items() if n not in self.commands and not e.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
