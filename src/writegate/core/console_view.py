"""What a module shows in the operator console: its own tables and links from a job to its API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from writegate.core.jobs import Job


@dataclass(frozen=True)
class Progress:
    """A progress bar cell: done out of total (total None while unknown)."""

    done: int
    total: int | None
    label: str = ""


@dataclass(frozen=True)
class Link:
    """A link cell, or a link from a job page to the records it touched."""

    label: str
    href: str


Cell = str | int | float | bool | None | Progress | Link


@dataclass(frozen=True)
class ViewTable:
    """Rows of one console view; `note` says what the table leaves out."""

    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass(frozen=True)
class ConsoleView:
    """A titled table; rows(session, tenant) gets tenant None for an all-tenants operator."""

    title: str
    rows: Callable[[Session, str | None], ViewTable]


class ConsoleProvider(Protocol):
    """A module's part of the console."""

    def views(self) -> list[ConsoleView]:
        """The module's tables, in the order the console lists them."""
        ...

    def job_links(self, job: Job) -> list[Link]:
        """Links from one of the module's jobs to the API views of the records it touched."""
        ...


@dataclass(frozen=True)
class SimpleConsole:
    """A ConsoleProvider from a list of views and an optional job-links function."""

    view_list: list[ConsoleView]
    links: Callable[[Job], list[Link]] | None = None

    def views(self) -> list[ConsoleView]:
        """The views, as given."""
        return list(self.view_list)

    def job_links(self, job: Job) -> list[Link]:
        """The links function's answer, or none."""
        return self.links(job) if self.links is not None else []
